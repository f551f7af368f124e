"""The Web Service SDK (``/PfWsSdk.asmx``) and the ``MfaBackend`` port with its two adapters."""
