"""WSGI entry point: ``gunicorn wsgi:app``; also ``FLASK_APP=wsgi.py`` for ``flask db ...``."""

from app import create_app

app = create_app()
