"""The IMAP server: session actor (session.py) and its helpers.

    session.py            the actor: connection, framing, authentication, dispatch
    commands_mailbox.py   SELECT/EXAMINE, CREATE, DELETE, RENAME, (UN)SUBSCRIBE, LIST,
                          LSUB, NAMESPACE, STATUS, APPEND, CLOSE, UNSELECT
    commands_message.py   FETCH, STORE, SEARCH, EXPUNGE, COPY, MOVE (and UID forms)
    selected.py           the selected-mailbox view (uid <-> number, pending updates)
    fetch.py search.py    FETCH items and SEARCH evaluation; mailboxes.py: LIST matching
"""
