"""Security questions: a catalogue per language, and each user's hashed, normalised answers."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import delete, select

from . import validation as v
from .audit import Actor, AuditLog
from .clock import Clock
from .crypto import Hasher
from .db import Database
from .errors import InvalidInput
from .models import SecurityAnswer, SecurityQuestion
from .settings import SettingsService
from .users import ensure_can_authenticate, load_user, record_failure, record_success

DEFAULT_QUESTIONS = (
    "What was the name of your first pet?",
    "In what city were you born?",
    "What is the name of the street you grew up on?",
    "What was the make of your first car?",
    "What was the name of your first school?",
    "What is your favourite book?",
    "What was your childhood nickname?",
    "In what city did your parents meet?",
)
ANSWERS_REQUIRED = 4  # MFA Server: "The user must select four security questions"


@dataclass(frozen=True)
class Question:
    id: int
    text: str


class SecurityQuestionService:
    def __init__(self, db: Database, audit: AuditLog, clock: Clock, hasher: Hasher,
                 settings: SettingsService) -> None:
        self._db, self._audit, self._clock, self._hasher, self._settings = db, audit, clock, hasher, settings

    def catalogue(self, language: str = "en") -> list[Question]:
        with self._db.read() as s:
            rows = s.scalars(select(SecurityQuestion).where(SecurityQuestion.language == language,
                                                            SecurityQuestion.active.is_(True))
                             .order_by(SecurityQuestion.position, SecurityQuestion.id))
            return [Question(q.id, q.text) for q in rows]

    def seed_defaults(self) -> None:
        with self._db.write() as s:
            if s.scalar(select(SecurityQuestion.id).limit(1)) is None:
                for i, text in enumerate(DEFAULT_QUESTIONS):
                    s.add(SecurityQuestion(language="en", text=text, position=i, active=True))

    def set_answers(self, actor: Actor, username: str, answers: Mapping[int, str]) -> None:
        if len(answers) != ANSWERS_REQUIRED:
            raise InvalidInput("answers", f"answer exactly {ANSWERS_REQUIRED} different questions")
        clean: dict[int, str] = {}
        for qid, answer in answers.items():
            norm = v.normalise_answer(v.text(f"answer_{qid}", answer, max_len=128))
            if len(norm) < 2:
                raise InvalidInput(f"answer_{qid}", "is too short")
            clean[qid] = self._hasher.hash(norm)
        with self._db.write() as s:
            valid = set(s.scalars(select(SecurityQuestion.id).where(SecurityQuestion.id.in_(list(clean)),
                                                                    SecurityQuestion.active.is_(True))))
            if valid != set(clean):
                raise InvalidInput("answers", "refers to an unknown question")
            u = load_user(s, v.username(username), for_update=True)
            s.execute(delete(SecurityAnswer).where(SecurityAnswer.user_id == u.id))
            for qid, digest in clean.items():
                s.add(SecurityAnswer(user_id=u.id, question_id=qid, answer_hash=digest))
            self._audit.append(s, actor, "questions.set", u.username, count=len(clean))

    def challenge(self, username: str) -> list[Question]:
        """Pick N of the user's questions at random (N = Questions to answer)."""
        n = self._settings.get()["questions_to_answer"]
        with self._db.read() as s:
            u = load_user(s, v.username(username))
            rows = list(s.execute(select(SecurityQuestion.id, SecurityQuestion.text)
                                  .join(SecurityAnswer, SecurityAnswer.question_id == SecurityQuestion.id)
                                  .where(SecurityAnswer.user_id == u.id)))
        picked = secrets.SystemRandom().sample(rows, min(n, len(rows)))
        return [Question(r[0], r[1]) for r in picked]

    def has_answers(self, username: str) -> bool:
        with self._db.read() as s:
            u = load_user(s, v.username(username))
            return s.scalar(select(SecurityAnswer.id).where(SecurityAnswer.user_id == u.id).limit(1)) is not None

    def verify(self, actor: Actor, username: str, answers: Mapping[int, str]) -> bool:
        settings = self._settings.get()
        if len(answers) < settings["questions_to_answer"]:
            raise InvalidInput("answers", f"answer {settings['questions_to_answer']} questions")
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            now = self._clock.now()
            ensure_can_authenticate(u, now)
            stored = {a.question_id: a.answer_hash for a in s.scalars(
                select(SecurityAnswer).where(SecurityAnswer.user_id == u.id))}
            ok = all(qid in stored and self._hasher.verify(stored[qid], v.normalise_answer(str(ans)))
                     for qid, ans in answers.items())
            if ok:
                record_success(u)
            elif record_failure(u, now, settings):
                self._audit.append(s, actor, "user.locked_out", u.username, outcome="failure")
            self._audit.append(s, actor, "questions.verify", u.username, outcome="success" if ok else "failure")
            return ok

    def reset(self, actor: Actor, username: str) -> None:
        with self._db.write() as s:
            u = load_user(s, v.username(username), for_update=True)
            s.execute(delete(SecurityAnswer).where(SecurityAnswer.user_id == u.id))
            self._audit.append(s, actor, "questions.reset", u.username)
