"""aiosmtpd as an interop target for mailstage (started by aiosmtpd.ts, Debian's python3-aiosmtpd).

One JSON argument configures it (see AiosmtpdOptions in aiosmtpd.ts). Each accepted message is
written to OUT_DIR as <n>.eml (the bytes received, after dot-unstuffing, CRLF kept) plus <n>.json
(envelope: sender, recipients with their RCPT parameters, MAIL parameters, auth login, TLS). The
.json is renamed into place last, so a reader that sees it also sees the complete .eml.

Prints "READY <port>" on stdout once the server answers; stops on SIGTERM/SIGINT.
"""

import asyncio
import hmac
import json
import logging
import os
import secrets
import signal
import ssl
import sys
import threading
import time

from aiosmtpd.controller import Controller
from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import MISSING, SMTP, AuthResult, LoginPassword

CFG = json.loads(sys.argv[1])
HOST = CFG["host"]
PORT = int(CFG["port"])
OUT_DIR = CFG["outDir"]
USER = CFG["user"].encode()
PASSWORD = CFG["password"].encode()
HOSTNAME = CFG.get("hostname") or "aiosmtpd.example.test"
LMTP_MODE = bool(CFG.get("lmtp"))
FAIL_RCPT = {a.lower() for a in CFG.get("failRecipients", [])}
REJECT_RCPT = {a.lower() for a in CFG.get("rejectRecipients", [])}

logging.basicConfig(
    level=logging.DEBUG if CFG.get("verbose") else logging.WARNING,
    stream=sys.stderr,
    format="%(asctime)s %(name)s %(levelname)s %(message)s",
)


def authenticator(server, session, envelope, mechanism, auth_data):
    """PLAIN and LOGIN (built in) hand us LoginPassword; accept exactly the configured pair."""
    ok = (
        isinstance(auth_data, LoginPassword)
        and hmac.compare_digest(auth_data.login, USER)
        and hmac.compare_digest(auth_data.password, PASSWORD)
    )
    # handled defaults to True, which means "I already sent the reply": a failure must say
    # handled=False or aiosmtpd sends nothing and the client waits forever.
    return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)


class Handler:
    def __init__(self):
        self.seq = 0
        self.lock = threading.Lock()

    # aiosmtpd collects auth_* methods of the handler too; "__" becomes "-" in the mechanism name.
    async def auth_CRAM__MD5(self, server, args):
        if len(args) > 1:
            # RFC 2195: CRAM-MD5 has no initial response.
            await server.push("501 5.5.4 CRAM-MD5 takes no initial response")
            return AuthResult(success=False, handled=True)
        challenge = "<{}.{}@{}>".format(secrets.token_hex(8), int(time.time()), HOSTNAME).encode()
        response = await server.challenge_auth(challenge)
        if response is MISSING:
            # challenge_auth already replied (501 for "*" or bad base64): handled=True means
            # aiosmtpd sends nothing more.
            return AuthResult(success=False, handled=True)
        login, _, digest = response.partition(b" ")
        expected = hmac.new(PASSWORD, challenge, "md5").hexdigest().encode()
        ok = hmac.compare_digest(login, USER) and hmac.compare_digest(digest.lower(), expected)
        return AuthResult(success=ok, handled=False, auth_data=LoginPassword(login, b"") if ok else None)

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # With no mechanisms aiosmtpd still advertises an empty "250-AUTH " line: drop it.
        if not CFG.get("auth", True):
            responses = [r for r in responses if not r[4:].startswith("AUTH")]
        session.host_name = hostname
        return responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        # Defining this hook means aiosmtpd no longer records the recipient itself: do it here,
        # keeping each recipient's own parameters (envelope.rcpt_options is one flat list).
        if address.lower() in REJECT_RCPT:
            return "550 5.1.1 <{}>: Recipient rejected (configured)".format(address)
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        per = getattr(envelope, "per_rcpt", None)
        if per is None:
            per = []
            envelope.per_rcpt = per
        per.append({"address": address, "options": list(rcpt_options)})
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.seq += 1
            n = self.seq
        base = os.path.join(OUT_DIR, "{:06d}".format(n))
        content = envelope.original_content or b""
        with open(base + ".eml.tmp", "wb") as f:
            f.write(content)
        os.rename(base + ".eml.tmp", base + ".eml")
        login = getattr(session.auth_data, "login", None)
        meta = {
            "seq": n,
            "mailFrom": envelope.mail_from,
            "mailOptions": list(envelope.mail_options),
            "rcptTos": list(envelope.rcpt_tos),
            "recipients": getattr(envelope, "per_rcpt", []),
            "smtpUtf8": bool(envelope.smtp_utf8),
            # session.auth_data is what our AuthResult carried (session.login_data is deprecated).
            "login": login.decode("utf-8", "replace") if isinstance(login, bytes) else None,
            # session.ssl is only set by STARTTLS; with implicit TLS (ssl_context) the transport
            # itself carries the SSL object.
            "tls": session.ssl is not None
            or server.transport.get_extra_info("ssl_object") is not None,
            "heloName": session.host_name,
            "size": len(content),
            "lmtp": LMTP_MODE,
        }
        with open(base + ".json.tmp", "w", encoding="utf-8") as f:
            json.dump(meta, f, ensure_ascii=False)
        os.rename(base + ".json.tmp", base + ".json")
        if not LMTP_MODE:
            return "250 2.0.0 OK queued as {:06d}".format(n)
        # LMTP (RFC 2033): one reply per accepted recipient, in RCPT order. aiosmtpd's push() adds
        # only the final CRLF, so join the lines with CRLF ourselves.
        lines = []
        for rcpt in envelope.rcpt_tos:
            if rcpt.lower() in FAIL_RCPT:
                lines.append("550 5.1.1 <{}> delivery failed (configured)".format(rcpt))
            else:
                lines.append("250 2.0.0 <{}> OK {:06d}".format(rcpt, n))
        return "\r\n".join(lines) if lines else "250 2.0.0 OK"


class LMTPController(Controller):
    """aiosmtpd's Controller always builds an SMTP; swap in its LMTP class (LHLO, no EHLO/HELO)."""

    def factory(self):
        return LMTP(self.handler, **self.SMTP_kwargs)


def tls_context():
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(CFG["certFile"], CFG["keyFile"])
    return ctx


def main():
    tls_mode = CFG.get("tls") or "none"
    kwargs = dict(
        hostname=HOST,
        port=PORT,
        server_hostname=HOSTNAME,
        ident="mailstage interop aiosmtpd",
        enable_SMTPUTF8=bool(CFG.get("smtputf8", True)),
        # Bytes in, bytes out: the .eml must be what the client sent (8-bit, UTF-8 or not).
        decode_data=False,
        data_size_limit=int(CFG.get("dataSizeLimit") or 0),
        authenticator=authenticator if CFG.get("auth", True) else None,
        auth_require_tls=bool(CFG.get("authRequireTls", False)),
        auth_required=bool(CFG.get("authRequired", False)),
        require_starttls=bool(CFG.get("requireStarttls", False)),
        ready_timeout=10.0,
    )
    if tls_mode == "starttls":
        kwargs["tls_context"] = tls_context()
    elif tls_mode == "implicit":
        kwargs["ssl_context"] = tls_context()
    if not CFG.get("auth", True):
        # No authenticator: keep AUTH out of EHLO entirely.
        kwargs["auth_exclude_mechanism"] = ["PLAIN", "LOGIN", "CRAM-MD5"]
    cls = LMTPController if LMTP_MODE else Controller
    controller = cls(Handler(), **kwargs)
    controller.start()
    print("READY {}".format(PORT), flush=True)

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    while not stop.wait(1.0):
        pass
    controller.stop()


if __name__ == "__main__":
    main()
