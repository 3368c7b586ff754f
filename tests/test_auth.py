"""Passwords, tokens, the stored secret and account-field validation."""

import base64
import hashlib
import hmac
import json
import os
import stat

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.clock import FakeClock
from domain.errors import BadRequest
from domain.users import Role, User
from services.auth import (
    AuthError,
    Claims,
    TokenService,
    check_login,
    hash_password,
    load_or_create_secret,
    validate_nickname,
    validate_password,
    validate_username,
    verify_password,
)

SECRET = "s" * 64  # long enough for HS512 too, so pyjwt does not warn
N = 2**10
START = 1_764_126_000.0


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hand_made_token(header: dict, payload: dict, sign=lambda signing_input: b"") -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}"
    return f"{signing_input}.{b64url(sign(signing_input.encode()))}"


@pytest.fixture
def clock():
    return FakeClock(START)


@pytest.fixture
def tokens(clock):
    return TokenService(SECRET, clock=clock, ttl_s=3600)


@pytest.fixture
def user():
    return User(id=42, username="ada", display_name="Ada L", role=Role.TEACHER, created_at=START)


@pytest.fixture(scope="module")
def rsa_pair():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()
    return private_pem, public_pem


def valid_claims(**changes):
    claims = {"sub": "42", "name": "Ada L", "role": "teacher", "iat": int(START), "exp": int(START) + 600}
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not ...}


# -- passwords ---------------------------------------------------------------------------


def test_hash_then_verify_round_trips():
    stored = hash_password("correct horse battery", n=N)
    assert verify_password("correct horse battery", stored)


def test_wrong_password_does_not_verify():
    stored = hash_password("correct horse battery", n=N)
    assert not verify_password("correct horse batterY", stored)
    assert not verify_password("", stored)
    assert not verify_password("correct horse battery ", stored)


def test_same_password_gets_different_salts_and_hashes():
    first, second = hash_password("same password", n=N), hash_password("same password", n=N)
    assert first != second
    assert first.split("$")[4] != second.split("$")[4]
    assert len(base64.b64decode(first.split("$")[4])) == 16


def test_hash_string_describes_its_parameters():
    scheme, n, r, p, salt, digest = hash_password("pw", n=N).split("$")
    assert (scheme, n, r, p) == ("scrypt", "1024", "8", "1")
    assert len(base64.b64decode(digest)) == 32


def test_verify_reads_cost_from_the_stored_string():
    salt = b"0123456789abcdef"
    digest = hashlib.scrypt(b"pw-of-old", salt=salt, n=2**4, r=2, p=3, dklen=24)
    stored = f"scrypt$16$2$3${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"
    assert verify_password("pw-of-old", stored)
    assert not verify_password("pw-of-new", stored)


def test_default_cost_is_two_to_the_fourteen():
    assert hash_password("pw").split("$")[1] == "16384"


@pytest.mark.parametrize("password", ["\ud800lone surrogate", "ünïcødé 🔑", "nul\x00inside", "x" * 10_000])
def test_unusual_passwords_hash_and_verify_without_raising(password):
    stored = hash_password(password, n=N)
    assert verify_password(password, stored)
    assert not verify_password(password + "!", stored)


@pytest.mark.parametrize("stored", [
    "", "scrypt", "bcrypt$16384$8$1$c2FsdA==$aGFzaA==", "scrypt$abc$8$1$c2FsdA==$aGFzaA==",
    "scrypt$16384$8$1$not base64!$aGFzaA==", "scrypt$1000$8$1$c2FsdHNhbHRzYWx0c2E=$" + "A" * 44,
    "scrypt$1073741824$8$1$c2FsdHNhbHRzYWx0c2E=$" + "A" * 44,  # would need 1 TiB: refused, not attempted
    "scrypt$16384$8$1$c2FsdHNhbHRzYWx0c2E=$aGk=",  # 2-byte digest
    "scrypt$16384$0$1$c2FsdHNhbHRzYWx0c2E=$" + "A" * 44, "scrypt$-16384$8$1$c2FsdA==$" + "A" * 44,
    "scrypt$16384$8$1$c2FsdA==$" + "A" * 44 + "$extra", None, 12345,
])
def test_malformed_stored_hash_never_verifies_and_never_raises(stored):
    assert verify_password("anything", stored) is False


def test_hash_password_refuses_costs_that_are_not_powers_of_two():
    with pytest.raises(ValueError):
        hash_password("pw", n=1000)
    with pytest.raises(ValueError):
        hash_password("pw", n=2**30)


def test_login_check_does_one_scrypt_whether_or_not_the_user_exists(monkeypatch):
    stored = hash_password("right password", n=N)
    calls = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        calls.append(kwargs["n"])
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    assert check_login("right password", stored, n=N) is True
    assert check_login("wrong password", stored, n=N) is False
    assert check_login("any password", None, n=N) is False  # unknown user or guest
    assert calls == [N, N, N]


# -- tokens ------------------------------------------------------------------------------


def test_issued_token_verifies_to_its_claims(tokens, user):
    claims = tokens.verify(tokens.issue(user))
    assert claims == Claims(user_id=42, name="Ada L", role="teacher", expires_at=START + 3600)


def test_issued_token_carries_the_protocol_claims(tokens, user):
    payload = jwt.decode(tokens.issue(user), SECRET, algorithms=["HS256"], options={"verify_exp": False,
                                                                                   "verify_iat": False})
    assert payload == {"sub": "42", "name": "Ada L", "role": "teacher", "iat": int(START),
                       "exp": int(START) + 3600}
    assert jwt.get_unverified_header(tokens.issue(user))["alg"] == "HS256"


def test_token_expires_by_the_injected_clock_not_the_system_clock(tokens, user, clock):
    token = tokens.issue(user)
    clock.advance(3599)
    assert tokens.verify(token).user_id == 42
    clock.advance(1)
    with pytest.raises(AuthError) as refused:
        tokens.verify(token)
    assert refused.value.reason == "expired"


def test_token_from_a_fake_past_still_expires_although_real_time_is_later(user):
    # The fake clock is decades behind the real one: pyjwt's own exp check would call this expired.
    past = FakeClock(1_000_000_000.0)
    service = TokenService(SECRET, clock=past, ttl_s=60)
    token = service.issue(user)
    assert service.verify(token).expires_at == 1_000_000_060.0
    past.advance(61)
    with pytest.raises(AuthError, match="expired"):
        service.verify(token)


def test_token_from_a_fake_future_is_valid_although_real_time_is_earlier(user):
    future = FakeClock(4_000_000_000.0)  # year 2096: pyjwt's iat check would call this "not yet valid"
    service = TokenService(SECRET, clock=future, ttl_s=60)
    assert service.verify(service.issue(user)).user_id == 42


def test_forged_signature_is_refused(tokens, user):
    head, payload, _sig = tokens.issue(user).split(".")
    forged_payload = b64url(json.dumps(valid_claims(role="admin")).encode())
    with pytest.raises(AuthError) as refused:
        tokens.verify(f"{head}.{forged_payload}.{_sig}")
    assert refused.value.reason == "bad signature"


def test_token_signed_with_another_secret_is_refused(tokens, user, clock):
    other = TokenService("o" * 48, clock=clock, ttl_s=3600)
    with pytest.raises(AuthError, match="bad signature"):
        tokens.verify(other.issue(user))


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_token_is_refused(tokens, alg):
    token = hand_made_token({"alg": alg, "typ": "JWT"}, valid_claims())
    with pytest.raises(AuthError):
        tokens.verify(token)
    with pytest.raises(AuthError):
        tokens.verify(token.rstrip("."))


def test_pyjwt_made_alg_none_token_is_refused(tokens):
    with pytest.raises(AuthError, match="algorithm not allowed"):
        tokens.verify(jwt.encode(valid_claims(), None, algorithm="none"))


def test_hs512_token_with_the_right_secret_is_refused_when_hs256_is_pinned(tokens):
    token = jwt.encode(valid_claims(), SECRET, algorithm="HS512")
    with pytest.raises(AuthError, match="algorithm not allowed"):
        tokens.verify(token)


def test_rs256_token_is_refused_when_hs256_is_pinned(tokens, rsa_pair):
    token = jwt.encode(valid_claims(), rsa_pair[0], algorithm="RS256")
    with pytest.raises(AuthError, match="algorithm not allowed"):
        tokens.verify(token)


@pytest.mark.parametrize("token", [
    "", "not-a-token", "a.b", "a.b.c", "a.b.c.d", "....", "eyJ.eyJ.", "\ud800.x.y", "é.é.é",
    "x" * 9000, None, 42, b"bytes.are.not", ["a", "b"],
])
def test_malformed_tokens_are_refused(tokens, token):
    with pytest.raises(AuthError):
        tokens.verify(token)


@pytest.mark.parametrize("missing", ["sub", "exp"])
def test_token_missing_sub_or_exp_is_refused(tokens, missing):
    token = jwt.encode(valid_claims(**{missing: ...}), SECRET, algorithm="HS256")
    with pytest.raises(AuthError) as refused:
        tokens.verify(token)
    assert refused.value.reason == f"missing {missing}"


@pytest.mark.parametrize("claims", [
    valid_claims(sub=42), valid_claims(sub="abc"), valid_claims(sub="-1"), valid_claims(sub="0"),
    valid_claims(sub="42 "), valid_claims(sub="4\n"), valid_claims(sub="٤٢"), valid_claims(sub="9" * 40),
    valid_claims(exp="soon"), valid_claims(exp=True), valid_claims(exp=[1]), valid_claims(exp=1e400),
    valid_claims(name=["x"]), valid_claims(role={"r": 1}), valid_claims(iat="yesterday"),
    valid_claims(nbf=int(START) + 3600), valid_claims(iat=int(START) + 3600),
])
def test_well_signed_token_with_bad_claims_is_refused(tokens, claims):
    with pytest.raises(AuthError):
        tokens.verify(jwt.encode(claims, SECRET, algorithm="HS256"))


def test_payload_that_is_not_an_object_is_refused(tokens):
    token = hand_made_token({"alg": "HS256"}, valid_claims())
    head = token.split(".")[0]
    body = b64url(b"[1, 2, 3]")
    sig = b64url(hmac.new(SECRET.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    with pytest.raises(AuthError, match="malformed"):
        tokens.verify(f"{head}.{body}.{sig}")


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=300), st.from_regex(r"\A([A-Za-z0-9_-]{0,40}\.){2}[A-Za-z0-9_-]{0,40}\Z")))
def test_arbitrary_text_is_refused_with_auth_error_only(text):
    service = TokenService(SECRET, clock=FakeClock(START), ttl_s=60)
    with pytest.raises(AuthError):
        service.verify(text)


def test_rs256_public_key_verifies_tokens_made_with_the_private_key(clock, user, rsa_pair):
    private_pem, public_pem = rsa_pair
    issuer = TokenService(None, clock=clock, ttl_s=60, private_key=private_pem)
    verifier = TokenService(None, clock=clock, ttl_s=60, public_key=public_pem)
    assert verifier.algorithm == "RS256"
    assert verifier.verify(issuer.issue(user)).user_id == 42


def test_rs256_verifier_refuses_hs256_tokens_even_signed_with_its_public_key(clock, rsa_pair):
    public_pem = rsa_pair[1]
    verifier = TokenService(SECRET, clock=clock, ttl_s=60, public_key=public_pem)
    confused = hand_made_token(
        {"alg": "HS256", "typ": "JWT"}, valid_claims(),
        lambda data: hmac.new(public_pem.encode(), data, hashlib.sha256).digest(),
    )
    with pytest.raises(AuthError, match="algorithm not allowed"):
        verifier.verify(confused)
    with pytest.raises(AuthError, match="algorithm not allowed"):
        verifier.verify(jwt.encode(valid_claims(), SECRET, algorithm="HS256"))


def test_rs256_token_from_another_key_is_refused(clock, rsa_pair):
    stranger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    verifier = TokenService(None, clock=clock, ttl_s=60, public_key=rsa_pair[1])
    with pytest.raises(AuthError, match="bad signature"):
        verifier.verify(jwt.encode(valid_claims(), stranger, algorithm="RS256"))


def test_verify_only_server_refuses_to_issue_with_a_clear_error(clock, user, rsa_pair):
    verifier = TokenService(None, clock=clock, ttl_s=60, public_key=rsa_pair[1])
    assert not verifier.can_issue
    with pytest.raises(RuntimeError, match="private key"):
        verifier.issue(user)


@pytest.mark.parametrize("kwargs", [
    {"secret": "short"}, {"secret": ""}, {"secret": None}, {"secret": SECRET, "algorithm": "none"},
    {"secret": SECRET, "algorithm": "RS256"}, {"secret": SECRET, "ttl_s": 0},
    {"secret": None, "public_key": "-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n"},
])
def test_unusable_token_settings_are_refused_at_startup(clock, kwargs):
    kwargs.setdefault("ttl_s", 60)
    with pytest.raises(ValueError):
        TokenService(kwargs.pop("secret"), clock=clock, **kwargs)


def test_private_key_given_as_public_key_is_refused(clock, rsa_pair):
    with pytest.raises(ValueError, match="public key"):
        TokenService(None, clock=clock, ttl_s=60, public_key=rsa_pair[0])


# -- the stored secret -------------------------------------------------------------------


def test_secret_is_created_once_with_owner_only_permissions(tmp_path):
    data_dir = tmp_path / "data"
    secret = load_or_create_secret(data_dir)
    assert len(secret) >= 48
    mode = stat.S_IMODE(os.stat(data_dir / "jwt_secret").st_mode)
    assert mode == 0o600
    assert load_or_create_secret(data_dir) == secret
    assert [p.name for p in data_dir.iterdir()] == ["jwt_secret"]  # no temp files left behind


def test_secret_differs_between_data_dirs(tmp_path):
    assert load_or_create_secret(tmp_path / "a") != load_or_create_secret(tmp_path / "b")


def test_existing_secret_file_is_used_as_is(tmp_path):
    (tmp_path / "jwt_secret").write_text("k" * 40 + "\n")
    assert load_or_create_secret(tmp_path) == "k" * 40


def test_empty_secret_file_is_an_error_not_a_weak_key(tmp_path):
    (tmp_path / "jwt_secret").write_text("")
    with pytest.raises(ValueError, match="delete it"):
        load_or_create_secret(tmp_path)


def test_tokens_survive_a_restart_with_the_stored_secret(tmp_path, clock, user):
    before = TokenService(load_or_create_secret(tmp_path), clock=clock, ttl_s=60)
    after = TokenService(load_or_create_secret(tmp_path), clock=clock, ttl_s=60)
    assert after.verify(before.issue(user)).user_id == 42


# -- account fields ----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["ada", "Ada_Lovelace.1815", "a-b", "x" * 32, "..."])
def test_valid_usernames_pass_unchanged(name):
    assert validate_username(name) == name


@pytest.mark.parametrize("name", [
    "ab", "x" * 33, "", "ada lovelace", "ada\n", " ada", "ädä", "ada@x", "a/b", "ada\x00",
    "ｆｕｌｌ", "\ud800ab", "guest-12345678", "GUEST-abc", None, 123, ["ada"], {"u": 1}, True,
])
def test_invalid_usernames_raise_bad_request(name):
    with pytest.raises(BadRequest):
        validate_username(name)


@pytest.mark.parametrize("password", ["12345678", "x" * 256, "pässwörd", "with spaces in it", "🔑" * 8])
def test_valid_passwords_pass_unchanged(password):
    assert validate_password(password) == password


@pytest.mark.parametrize("password", ["1234567", "x" * 257, "", "\ud800" * 8, None, 12345678, ["p" * 8]])
def test_invalid_passwords_raise_bad_request(password):
    with pytest.raises(BadRequest, match="password"):
        validate_password(password)


@pytest.mark.parametrize(("raw", "clean"), [
    ("Nick", "Nick"), ("  Nick  ", "Nick"), ("Zoë 🚀", "Zoë 🚀"), ("x" * 32, "x" * 32), ("\tNick\n", "Nick"),
    ("<b>bold</b>", "<b>bold</b>"),
])
def test_valid_nicknames_are_stripped(raw, clean):
    assert validate_nickname(raw) == clean


@pytest.mark.parametrize("nickname", [
    "", "   ", "x" * 33, "a\nb", "a\x00b", "a\x1bb", "evil\u202ename", "zero\u200bwidth", "\ud800",
    None, 5, ["Nick"],
])
def test_invalid_nicknames_raise_bad_request(nickname):
    with pytest.raises(BadRequest, match="nickname"):
        validate_nickname(nickname)
