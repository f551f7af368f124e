"""The portal's forms (Flask-WTF: every one carries a CSRF token).

Fields check shape only (required, length, digits); the rules (PIN strength, phone
numbers, question catalogue) are the core's, and its errors are shown beside the field
they name (:func:`field_error`).
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectChoice,
    SelectField,
    StringField,
)
from wtforms.validators import DataRequired, EqualTo, InputRequired, Length, NumberRange, Regexp

from ..sdk.backend import InvalidInput

CODE = Regexp(r"^\s*\d{6,8}\s*$", message=_l("Enter the 6 or 8 digits your app shows."))


class LoginForm(FlaskForm):
    username = StringField(_l("Username"), validators=[DataRequired(), Length(max=256)],
                           render_kw={"autocomplete": "username", "autocapitalize": "none", "spellcheck": "false"})
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=1024)],
                             render_kw={"autocomplete": "current-password"})


class CodeForm(FlaskForm):
    code = StringField(_l("Verification code"), validators=[DataRequired(), CODE],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "pattern": r"\d*",
                                  "maxlength": 8})
    pin = PasswordField(_l("PIN"), validators=[Length(max=16)], render_kw={"inputmode": "numeric"})


class HardwareTokenForm(FlaskForm):
    serial = StringField(_l("Serial number"), validators=[DataRequired(), Length(max=64)],
                         render_kw={"autocomplete": "off", "autocapitalize": "characters", "spellcheck": "false"})
    code = StringField(_l("Code the token shows now"), validators=[DataRequired(), CODE],
                       render_kw={"autocomplete": "one-time-code", "inputmode": "numeric", "maxlength": 8})


class EmptyForm(FlaskForm):
    """A button that changes something: only the CSRF token."""


class MethodForm(FlaskForm):
    method = RadioField(_l("How do you want to confirm sign-ins?"), validators=[InputRequired()], choices=[])


class PinForm(FlaskForm):
    pin = PasswordField(_l("New PIN"), validators=[DataRequired(), Regexp(r"^\d+$", message=_l("Digits only.")),
                                                   Length(max=16)], render_kw={"inputmode": "numeric"})
    confirm = PasswordField(_l("Confirm PIN"), validators=[DataRequired(), EqualTo("pin", _l("The PINs differ."))],
                            render_kw={"inputmode": "numeric"})


class PhoneForm(FlaskForm):
    phone = StringField(_l("Phone number"), validators=[Length(max=32)],
                        render_kw={"autocomplete": "tel", "inputmode": "tel", "placeholder": "+44 20 7946 0000"})
    phone_extension = StringField(_l("Extension"), validators=[Length(max=16)])
    backup_phone = StringField(_l("Backup phone number"), validators=[Length(max=32)],
                               render_kw={"autocomplete": "tel", "inputmode": "tel"})
    backup_extension = StringField(_l("Backup extension"), validators=[Length(max=16)])


class BypassForm(FlaskForm):
    seconds = IntegerField(_l("Seconds"), validators=[NumberRange(min=1, max=86400)], default=300)


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[])


class ConfirmForm(FlaskForm):
    confirm = BooleanField(_l("Yes, deactivate this device"), validators=[DataRequired()])
    device_id = HiddenField()


def questions_form(count: int, choices: list[tuple[int, str]]) -> type[FlaskForm]:
    """``count`` pairs of question picker + answer."""
    attrs: dict[str, object] = {}
    options = [SelectChoice(0, _l("Choose a question"))] + [SelectChoice(qid, text) for qid, text in choices]
    for i in range(1, count + 1):
        attrs[f"question_{i}"] = SelectField(_l("Question %(n)s", n=i), coerce=int, choices=options,
                                             validators=[NumberRange(min=1, message=_l("Choose a question."))])
        attrs[f"answer_{i}"] = StringField(_l("Answer %(n)s", n=i), validators=[DataRequired(), Length(min=2, max=128)],
                                           render_kw={"autocomplete": "off"})
    return type("QuestionsForm", (FlaskForm,), attrs)


def answers_form(questions: list[tuple[int, str]]) -> type[FlaskForm]:
    attrs: dict[str, object] = {}
    for qid, text in questions:
        attrs[f"answer_{qid}"] = StringField(text, validators=[DataRequired(), Length(max=128)],
                                             render_kw={"autocomplete": "off"})
    return type("AnswersForm", (FlaskForm,), attrs)


def field_error(form: FlaskForm, exc: InvalidInput, aliases: dict[str, str] | None = None) -> None:
    """Put the core's error beside the field it names (or at the top of the form)."""
    name = (aliases or {}).get(exc.field, exc.field)
    field = getattr(form, name, None)
    message = exc.reason
    if field is not None and hasattr(field, "errors"):
        field.errors = [*field.errors, message]
    else:
        form.form_errors.append(message)
