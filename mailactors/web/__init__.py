"""The admin web pages, MTA-STS policy serving and the TLS report POST endpoint.

`app.WebApp` maps an HttpRequest to an HttpResponse; the HttpSessionActor
(actors/web.py) feeds it requests from the connection. Pages are server-rendered
jinja2 templates with autoescaping, and work without JavaScript.

Who can reach what:
- every http/https listener serves GET https://mta-sts.<our domain>/.well-known/
  mta-sts.txt (RFC 8461 3.3) and POST /tlsrpt (RFC 8460 TLS reports);
- the admin pages (login with the password of `mailactors setadminpassword`,
  kept hashed in <data_dir>/adminpasswd) are served only on listeners whose
  addresses are all loopback (localserve's and quickstart's admin listener);
  use an SSH tunnel to reach them from elsewhere;
- /metrics (Prometheus text format) needs the admin login or a loopback client.
"""
