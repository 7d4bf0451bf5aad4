"""The studio: a local web app for therapists to compose, preview, render and play sessions.

    folder.py    the studio's folder: its lock, what it holds, and paths kept inside it
    forms.py     a practice's front matter as form fields; form values as settings; errors by field
    preview.py   the script preview, the same text and plan `guided-audio script` prints
    composer.py  a couple's session as a form, and as the session TOML the CLI reads
    jobs.py      renders in a child process (worker.py), with their progress
    security.py  the token, Host and Origin checks, body limits and headers every response passes
    app.py       the pages and endpoints
    server.py    starting it: a free port on 127.0.0.1, a token, the address printed
"""
