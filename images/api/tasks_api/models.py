"""The tutorial's model, unchanged: existing tutorial databases hold exactly this table."""
from flask_sqlalchemy import SQLAlchemy

db = SQLAlchemy()


class Task(db.Model):
    # No __tablename__: Flask-SQLAlchemy derives "task", the name the tutorial's `flask db migrate` created.
    id = db.Column(db.Integer, primary_key=True)
    title = db.Column(db.String(80), nullable=False)
    description = db.Column(db.String(200))

    def to_dict(self) -> dict:
        return {"id": self.id, "title": self.title, "description": self.description}
