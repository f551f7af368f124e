"""SOAP 1.1 / 1.2 envelopes for the Web Service SDK, with lxml and the contract's XSD.

Requests are parsed with entities and network access off; a DTD is refused outright
(SOAP forbids it), which also stops entity-expansion bombs. The operation element is
validated against ``contract/PfWsSdk.xsd`` before any handler sees it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Collection
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lxml import etree

CONTRACT = Path(__file__).resolve().parent / "contract"
NS = "urn:mfa-portal:PfWsSdk:v1"
SOAP11 = "http://schemas.xmlsoap.org/soap/envelope/"
SOAP12 = "http://www.w3.org/2003/05/soap-envelope"
WSDL_NS = "http://schemas.xmlsoap.org/wsdl/"
XS = "http://www.w3.org/2001/XMLSchema"
CONTENT_TYPES = {SOAP11: "text/xml; charset=utf-8", SOAP12: "application/soap+xml; charset=utf-8"}



def _new_parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False,
                           dtd_validation=False, remove_comments=True, remove_pis=True)


_PARSER = _new_parser()
SCHEMA = etree.XMLSchema(etree.parse(str(CONTRACT / "PfWsSdk.xsd"), _PARSER))
# lxml serialises concurrent use of one parser or validator; each thread gets its own.
_local = threading.local()


def _thread_parser() -> etree.XMLParser:
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _new_parser()
    return parser


def _thread_schema() -> etree.XMLSchema:
    schema = getattr(_local, "schema", None)
    if schema is None:
        schema = _local.schema = etree.XMLSchema(etree.parse(str(CONTRACT / "PfWsSdk.xsd"), _new_parser()))
    return schema
_FIELD = re.compile(r"Element '(?:\{[^}]*\})?([A-Za-z0-9_]+)'")
_MISSING = re.compile(r"Missing child element\(s\)\. Expected is \(\s*(?:\{[^}]*\})?([A-Za-z0-9_]+)")


@dataclass
class SoapError(Exception):
    """A request the service refuses; becomes a SOAP fault."""

    code: str
    message: str
    field: str | None = None
    sender: bool = True  # the caller's fault (Client / Sender) or ours (Server / Receiver)
    http_status: int | None = None
    retry_after: int | None = None


def q(name: str) -> str:
    return f"{{{NS}}}{name}"


def parse_request(body: bytes, content_type: str, operations: Collection[str]) -> tuple[str, etree._Element]:
    """Return the SOAP version (its envelope namespace) and the validated operation element."""
    media = content_type.split(";")[0].strip().lower()
    if media not in ("text/xml", "application/soap+xml"):
        raise SoapError("InvalidRequest", "Content-Type must be text/xml (SOAP 1.1) or application/soap+xml "
                        "(SOAP 1.2).", http_status=415)
    if not body:
        raise SoapError("InvalidRequest", "The request body is empty.")
    try:
        root = etree.fromstring(body, _thread_parser())
    except etree.XMLSyntaxError as exc:
        raise SoapError("InvalidRequest", f"The request is not well-formed XML: {exc.msg}") from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise SoapError("InvalidRequest", "A SOAP message must not contain a DTD.")
    version = etree.QName(root).namespace
    if etree.QName(root).localname != "Envelope" or version not in (SOAP11, SOAP12):
        raise SoapError("InvalidRequest", "The root element must be a SOAP 1.1 or 1.2 Envelope.")
    body_el = root.find(f"{{{version}}}Body")
    if body_el is None:
        raise SoapError("InvalidRequest", "The envelope has no Body.")
    ops = [child for child in body_el if isinstance(child.tag, str)]
    if len(ops) != 1:
        raise SoapError("InvalidRequest", "The Body must hold exactly one operation element.")
    op = ops[0]
    name = etree.QName(op)
    if name.namespace != NS or name.localname not in operations:
        raise SoapError("UnknownOperation", f"Unknown operation {name.localname!r} in namespace {name.namespace!r}; "
                        f"see the WSDL (namespace {NS}).")
    schema = _thread_schema()
    if not schema.validate(op):
        error = schema.error_log.last_error
        text = error.message if error else "invalid"
        # "Missing child element(s). Expected is ( {ns}username )" concerns the missing child.
        missing = _MISSING.search(text)
        match = missing or _FIELD.search(text)
        raise SoapError("InvalidArgument", _clean(text), field=match.group(1) if match else None)
    return version, op


def _clean(text: str) -> str:
    return re.sub(r"\{[^}]*\}", "", text)


def envelope(version: str, payload: etree._Element) -> bytes:
    env = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
    etree.SubElement(env, f"{{{version}}}Body").append(payload)
    out: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return out


def fault(version: str, err: SoapError, correlation_id: str | None) -> bytes:
    env = etree.Element(f"{{{version}}}Envelope", nsmap={"soap": version})
    body = etree.SubElement(env, f"{{{version}}}Body")
    f = etree.SubElement(body, f"{{{version}}}Fault")
    detail_parent: etree._Element
    if version == SOAP11:
        etree.SubElement(f, "faultcode").text = "soap:Client" if err.sender else "soap:Server"
        etree.SubElement(f, "faultstring").text = err.message
        detail_parent = etree.SubElement(f, "detail")
    else:
        code = etree.SubElement(f, f"{{{version}}}Code")
        etree.SubElement(code, f"{{{version}}}Value").text = "soap:Sender" if err.sender else "soap:Receiver"
        reason = etree.SubElement(f, f"{{{version}}}Reason")
        text = etree.SubElement(reason, f"{{{version}}}Text")
        text.set("{http://www.w3.org/XML/1998/namespace}lang", "en")
        text.text = err.message
        detail_parent = etree.SubElement(f, f"{{{version}}}Detail")
    detail = etree.SubElement(detail_parent, q("Error"), nsmap={"tns": NS})
    etree.SubElement(detail, q("Code")).text = err.code
    if err.field:
        etree.SubElement(detail, q("Field")).text = err.field
    etree.SubElement(detail, q("Message")).text = err.message
    if correlation_id:
        etree.SubElement(detail, q("CorrelationId")).text = correlation_id
    out: bytes = etree.tostring(env, xml_declaration=True, encoding="utf-8")
    return out


@lru_cache(maxsize=8)
def wsdl(address: str) -> bytes:
    """The WSDL as served: the XSD inlined and ``soap:address`` set to this deployment's URL."""
    doc = etree.parse(str(CONTRACT / "PfWsSdk.wsdl"), _PARSER)
    types = doc.find(f"{{{WSDL_NS}}}types")
    assert types is not None
    for child in list(types):
        types.remove(child)
    types.append(etree.parse(str(CONTRACT / "PfWsSdk.xsd"), _PARSER).getroot())
    for addr in doc.iter("{http://schemas.xmlsoap.org/wsdl/soap/}address",
                         "{http://schemas.xmlsoap.org/wsdl/soap12/}address"):
        addr.set("location", address)
    out: bytes = etree.tostring(doc, xml_declaration=True, encoding="utf-8")
    return out


def xsd() -> bytes:
    return (CONTRACT / "PfWsSdk.xsd").read_bytes()
