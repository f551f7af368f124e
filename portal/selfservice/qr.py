"""QR codes as inline SVG (``data:`` URI, allowed by the CSP's img-src): no imaging library,
nothing cached, nothing written to disk."""

from __future__ import annotations

import base64
import io

import qrcode
import qrcode.image.svg


def svg_data_uri(payload: str) -> str:
    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, box_size=10, border=4,
                       image_factory=qrcode.image.svg.SvgPathFillImage)
    qr.add_data(payload)
    qr.make(fit=True)
    buf = io.BytesIO()
    qr.make_image().save(buf)
    return "data:image/svg+xml;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
