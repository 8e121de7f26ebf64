"""The envelope address forms aiosmtpd's test suite calls valid
(aiosmtpd/tests/test_smtp.py, valid_mailfrom_addresses): each as it follows
"MAIL FROM:" or "RCPT TO:", exactly as that suite sends it."""

from __future__ import annotations

VALID_FORMS: tuple[str, ...] = (
    # no space between colon and address
    "anne@example.com",
    "<anne@example.com>",
    # one space between colon and address
    " anne@example.com",
    " <anne@example.com>",
    # multiple spaces between colon and address
    "  anne@example.com",
    "  <anne@example.com>",
    # non alphanums in local part
    "anne.arthur@example.com",
    "anne+promo@example.com",
    "anne-arthur@example.com",
    "anne_arthur@example.com",
    "_@example.com",
    # IP address in domain part
    "anne@127.0.0.1",
    "anne@[127.0.0.1]",
    "anne@[IPv6:2001:db8::1]",
    "anne@[IPv6::1]",
    # RFC 5322 comments
    "anne(comment)@example.com",
    "(comment)anne@example.com",
    "anne@example.com(comment)",
    "anne@machine(comment).  example",
    # source routes
    "<@example.org:anne@example.com>",
    "<@example.net,@example.org:anne@example.com>",
    # strange but valid
    "anne@mail",
    '""@example.com',
    '<""@example.com>',
    '" "@example.com',
    '"anne..arthur"@example.com',
    "mailhost!anne@example.com",
    "anne%example.org@example.com",
    'much."more\\ unusual"@example.com',
    'very."(),:;<>[]".VERY."very@\\ "very.unusual@strange.example.com',
    # RFC 3696 section 3
    "Fred\\ Bloggs@example.com",
    "Joe.\\\\Blow@example.com",
    '"Abc@def"@example.com',
    '"Fred Bloggs"@example.com',
    "customer/department=shipping@example.com",
    "$A12345@example.com",
    "!def!xyz%abc@example.com",
    "a" * 65 + "@example.com",
    "b" * 488 + "@example.com",
    "c" * 500,
)

assert len(VALID_FORMS) == 40
