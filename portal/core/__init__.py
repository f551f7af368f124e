"""The domain: models, services, crypto, OTP, activation, authentication, audit.

Nothing in this package imports Flask, Flask-WTF or zeep (a test walks the modules
to make sure). Configuration reaches it as the frozen dataclasses in
:mod:`portal.core.config`, built once by the application factory or the CLI.
"""
