"""Media signed with C2PA in the test: a certificate chain made with ``cryptography`` and a
manifest written by ``c2pa-python``, all offline (``../shared/MODELS.md`` has what the chain
needs: a CA with a subject key identifier; an end-entity certificate with digitalSignature
key usage, the emailProtection extended key usage, subject and authority key identifiers)."""

from __future__ import annotations

import datetime
import functools
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

__all__ = ["IPTC", "sign_media", "signing_chain"]

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"


def _name(common: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Likeness Monitor tests"),
        ]
    )


def _usage(*, signature: bool, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


@functools.cache
def signing_chain() -> tuple[bytes, bytes]:
    """(the end-entity certificate and its CA, PEM; the end-entity key, PEM PKCS#8)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    key = ec.generate_private_key(ec.SECP256R1())

    def certificate(
        subject: str, issuer: str, public: ec.EllipticCurvePublicKey
    ) -> x509.CertificateBuilder:
        return (
            x509.CertificateBuilder()
            .subject_name(_name(subject))
            .issuer_name(_name(issuer))
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )

    ca = (
        certificate("Test CA", "Test CA", ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_usage(signature=False, cert_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        certificate("Test Generator", "Test CA", key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(signature=True, cert_sign=False), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    chain = leaf.public_bytes(serialization.Encoding.PEM) + ca.public_bytes(
        serialization.Encoding.PEM
    )
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return chain, private


def sign_media(
    src: Path,
    dst: Path,
    *,
    source_type: str = "trainedAlgorithmicMedia",
    generator: str = "TestGen",
    mime: str = "video/mp4",
) -> Path:
    """``src`` with a C2PA manifest whose ``c2pa.created`` action has ``source_type`` (an
    IPTC digital source type: C2PA requires one), claimed by ``generator`` 1.0."""
    chain, key = signing_chain()
    signer = c2pa.Signer.from_info(
        c2pa.C2paSignerInfo(alg=b"es256", sign_cert=chain, private_key=key, ta_url=None)
    )
    created = {"action": "c2pa.created", "digitalSourceType": IPTC + source_type}
    manifest = {
        "claim_generator_info": [{"name": generator, "version": "1.0"}],
        "title": src.name,
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [created]}}],
    }
    with c2pa.Builder(manifest) as builder, src.open("rb") as source, dst.open("wb") as out:
        builder.sign(signer, mime, source, out)
    return dst
