"""WSGI entry point: ``gunicorn -k gthread -w 2 --threads 8 wsgi:app``."""

from portal import create_app

app = create_app()
