"""Byte transcripts of the sans-IO HTTP/1.1 server connection (protocol/http.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from mailactors.protocol import http
from mailactors.protocol.http import HttpFailure, HttpRequest, HttpResponse, HttpServer

NOW = datetime(2026, 11, 24, 12, 0, 0, tzinfo=UTC)
DATE = b"Date: Tue, 24 Nov 2026 12:00:00 GMT\r\n"


def request_of(server: HttpServer) -> HttpRequest:
    event = server.next_event()
    assert isinstance(event, HttpRequest), event
    return event


def test_get_then_keep_alive_then_second_request() -> None:
    s = HttpServer()
    s.receive_data(b"GET /a%20b?x=1 HTTP/1.1\r\nHost: Example.ORG:8080\r\n\r\nGET /second HT")
    req = request_of(s)
    assert (req.method, req.path, req.query, req.host) == ("GET", "/a b", "x=1", "example.org")
    out = s.send_response(HttpResponse(200, (("Content-Type", "text/plain"),), b"hi"), NOW)
    assert out == (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" + DATE + b"Content-Length: 2\r\n\r\nhi"
    )
    assert s.start_next_request()
    assert s.next_event() is http.NEED_DATA
    s.receive_data(b"TP/1.1\r\nHost: a\r\n\r\n")
    assert request_of(s).path == "/second"


def test_head_gets_headers_of_get_and_no_body() -> None:
    s = HttpServer()
    s.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n")
    request_of(s)
    out = s.send_response(HttpResponse(200, (), b"hello"), NOW)
    assert out.endswith(b"Content-Length: 5\r\n\r\n")


def test_post_body_collected() -> None:
    s = HttpServer()
    s.receive_data(b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nab")
    assert s.next_event() is http.NEED_DATA
    s.receive_data(b"cde")
    assert request_of(s).body == b"abcde"


def test_chunked_body_collected() -> None:
    s = HttpServer()
    s.receive_data(
        b"POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    )
    assert request_of(s).body == b"abc"


def test_declared_body_over_limit_is_413_and_closes() -> None:
    s = HttpServer()
    s.receive_data(
        b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (http.MAX_BODY_SIZE + 1)
    )
    failure = s.next_event()
    assert failure == HttpFailure(413, "request body too large")
    out = s.failure_response(failure, NOW)
    assert out.startswith(b"HTTP/1.1 413 Content Too Large\r\n")
    assert b"Connection: close\r\n" in out
    assert not s.start_next_request()
    assert s.next_event() is http.CONNECTION_CLOSED


def test_chunked_body_over_limit_is_413() -> None:
    s = HttpServer(body_limit=lambda method, path: 4)
    s.receive_data(
        b"POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n0\r\n\r\n"
    )
    assert s.next_event() == HttpFailure(413, "request body too large")


def test_tls_report_post_may_be_larger() -> None:
    assert http.default_body_limit("POST", "/tlsrpt") == http.MAX_REPORT_BODY_SIZE
    assert http.default_body_limit("POST", "/login") == http.MAX_BODY_SIZE
    s = HttpServer()
    s.receive_data(
        b"POST /tlsrpt HTTP/1.1\r\nHost: a\r\nContent-Length: %d\r\n\r\n" % (2 * 1024 * 1024)
    )
    assert s.next_event() is http.NEED_DATA


def test_header_section_over_64k_is_431() -> None:
    s = HttpServer()
    s.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * (http.MAX_HEADER_SIZE + 10))
    failure = s.next_event()
    assert isinstance(failure, HttpFailure) and failure.status == 431


def test_garbage_is_400_without_echo() -> None:
    s = HttpServer()
    s.receive_data(b"<script>\r\n\r\n")
    failure = s.next_event()
    assert failure == HttpFailure(400, "malformed request")
    out = s.failure_response(failure, NOW)
    assert out.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"<script>" not in out


def test_bad_target_is_400() -> None:
    s = HttpServer()
    s.receive_data(b"GET foo HTTP/1.1\r\nHost: a\r\n\r\n")
    assert s.next_event() == HttpFailure(400, "bad request target")


def test_absolute_form_target() -> None:
    s = HttpServer()
    s.receive_data(b"GET http://a/x?y HTTP/1.1\r\nHost: a\r\n\r\n")
    req = request_of(s)
    assert (req.path, req.query) == ("/x", "y")


def test_expect_100_continue() -> None:
    s = HttpServer()
    s.receive_data(b"POST /f HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
    assert s.next_event() is http.NEED_DATA
    assert s.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    s.receive_data(b"ok")
    assert request_of(s).body == b"ok"


def test_connection_close_from_client_ends_after_response() -> None:
    s = HttpServer()
    s.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    request_of(s)
    s.send_response(HttpResponse(200), NOW)
    assert not s.start_next_request()


def test_http10_client_closes() -> None:
    s = HttpServer()
    s.receive_data(b"GET / HTTP/1.0\r\n\r\n")
    request_of(s)
    s.send_response(HttpResponse(200, (), b"x"), NOW)
    assert not s.start_next_request()


def test_peer_close_while_idle() -> None:
    s = HttpServer()
    s.receive_data(b"")
    assert s.next_event() is http.CONNECTION_CLOSED


def test_ipv6_host() -> None:
    s = HttpServer()
    s.receive_data(b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n")
    assert request_of(s).host == "[::1]"


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=200), max_size=8))
def test_any_bytes_never_crash(chunks: list[bytes]) -> None:
    s = HttpServer()
    for chunk in chunks:
        s.receive_data(chunk)
        for _ in range(10):
            event = s.next_event()
            if event is http.NEED_DATA or event is http.CONNECTION_CLOSED:
                break
            if isinstance(event, HttpFailure):
                assert event.status in (400, 413, 431)
                s.failure_response(event, NOW)
                return
            assert isinstance(event, HttpRequest)
            s.send_response(HttpResponse(200, (), b"ok"), NOW)
            if not s.start_next_request():
                return
        else:
            continue
        if event is http.CONNECTION_CLOSED:
            return


def test_idle_only_without_a_started_request() -> None:
    s = HttpServer()
    assert s.idle
    s.receive_data(b"GET / HTTP/1.1\r\n")
    assert s.next_event() is http.NEED_DATA
    assert not s.idle
    s.receive_data(b"Host: a\r\n\r\n")
    request_of(s)
    assert not s.idle
    s.send_response(HttpResponse(204), NOW)
    assert s.start_next_request()
    assert s.idle
