"""The yardstick: a bare Flask endpoint that answers a POST with a small XML body."""

from flask import Flask, Response, request

app = Flask(__name__)
BODY = (b'<?xml version="1.0" encoding="utf-8"?><soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/'
        b'envelope/"><soap:Body><ok/></soap:Body></soap:Envelope>')


@app.post("/bare")
def bare() -> Response:
    request.get_data()
    return Response(BODY, content_type="text/xml; charset=utf-8")
