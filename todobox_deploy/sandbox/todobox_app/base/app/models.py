"""The todobox data model."""

import secrets

from werkzeug.security import check_password_hash, generate_password_hash

from app import db


class User(db.Model):
    __tablename__ = "user"

    id = db.Column(db.Integer, primary_key=True)
    username = db.Column(db.String(64), index=True, unique=True, nullable=False)
    email = db.Column(db.String(120), index=True, unique=True)
    password_hash = db.Column(db.String(255))
    oauth_provider = db.Column(db.String(32))
    oauth_id = db.Column(db.String(128))
    api_token = db.Column(db.String(64), index=True, unique=True)

    def set_password(self, password):
        self.password_hash = generate_password_hash(password)

    def check_password(self, password):
        return bool(self.password_hash) and check_password_hash(self.password_hash, password)

    def generate_api_token(self):
        """Issue a new random API token (64 URL-safe characters), store it and return it."""
        self.api_token = secrets.token_urlsafe(48)
        return self.api_token

    def revoke_api_token(self):
        self.api_token = None

    @staticmethod
    def check_api_token(token):
        if not token:
            return None
        return db.session.execute(db.select(User).filter_by(api_token=token)).scalar_one_or_none()

    def to_dict(self):
        return {
            "id": self.id,
            "username": self.username,
            "email": self.email,
            "oauth_provider": self.oauth_provider,
            "has_api_token": self.api_token is not None,
        }

    def __repr__(self):
        return f"<User {self.username}>"
