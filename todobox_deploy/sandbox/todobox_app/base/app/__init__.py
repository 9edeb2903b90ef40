"""The todobox Flask application factory."""

import logging
import sys

from flask import Flask, jsonify
from flask.logging import default_handler
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy

from config import Config

db = SQLAlchemy()
migrate = Migrate()

_LOG_FORMAT = "%(asctime)s %(levelname)s [%(name)s] %(message)s"


def _configure_logging(app):
    if app.config.get("LOG_FILE"):
        from logging.handlers import WatchedFileHandler

        handler = WatchedFileHandler(app.config["LOG_FILE"])
    else:
        handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(_LOG_FORMAT))
    app.logger.removeHandler(default_handler)
    app.logger.addHandler(handler)
    app.logger.setLevel(logging.INFO)


def create_app(config_class=Config):
    app = Flask(__name__)
    app.config.from_object(config_class)
    _configure_logging(app)

    db.init_app(app)
    migrate.init_app(app, db)

    from app import models  # noqa: F401  (register the models with SQLAlchemy)
    from app.routes import bp

    app.register_blueprint(bp)

    @app.errorhandler(500)
    def internal_error(error):
        db.session.rollback()
        return jsonify(error="internal server error"), 500

    return app


_app = None


def __getattr__(name):
    # ``from app import app`` (as in the deployment checklist's snippets) gets a ready app.
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(name)
