"""Shared by the smtplib-based helpers (send.py, smuggle.py): an smtplib reply as the
JSON pair [code, text] that the Rust tests read (`common::code_text`)."""


def pair(reply):
    code, text = reply
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return [code, text]
