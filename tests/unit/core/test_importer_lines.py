"""Import reports name the first line of a record, also when a quoted field spans lines."""

from __future__ import annotations

from portal.core.audit import Actor
from portal.core.importer import import_users


def test_rejected_multiline_record_is_reported_at_its_first_line(sqlite_services) -> None:
    text = ('username,display_name,email\nalice,"Alice\nSmith",a@example.com\nbob,Bob,not-an-email\n'
            'carol,Carol,c@example.com\n')
    report = import_users(sqlite_services.users, Actor("t"), text.splitlines(keepends=True))
    assert report.created == 1  # carol
    assert report.rejected == [(2, "display_name: must not contain control characters"),
                               (4, "email: is not a valid e-mail address")]


def test_broken_csv_is_reported_not_raised(sqlite_services) -> None:
    text = 'username,display_name\ncarol,"unterminated\x00'
    report = import_users(sqlite_services.users, Actor("t"), text.splitlines(keepends=True))
    assert report.created == 0 and report.rejected and report.rejected[0][0] == 2
