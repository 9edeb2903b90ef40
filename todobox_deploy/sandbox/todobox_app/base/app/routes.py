"""HTTP routes."""

from flask import Blueprint, abort, current_app, jsonify, request

from app import db
from app.models import User

bp = Blueprint("main", __name__)


@bp.get("/")
def index():
    return jsonify(app="todobox", status="ok")


@bp.get("/health")
def health():
    if request.args.get("db"):
        db.session.execute(db.text("SELECT 1"))
    return jsonify(status="ok")


@bp.get("/users")
def list_users():
    limit = current_app.config["USERS_PER_PAGE"]
    users = db.session.execute(db.select(User).order_by(User.id).limit(limit)).scalars().all()
    return jsonify(users=[u.to_dict() for u in users], count=len(users))


@bp.post("/users/<int:user_id>/token")
def issue_token(user_id):
    user = db.session.get(User, user_id) or abort(404)
    token = user.generate_api_token()
    db.session.commit()
    current_app.logger.info("issued an API token for user %s", user.id)
    return jsonify(id=user.id, token=token)


@bp.get("/api/me")
def me():
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
    user = User.check_api_token(token)
    if user is None:
        return jsonify(error="invalid or missing API token"), 401
    return jsonify(user.to_dict())
