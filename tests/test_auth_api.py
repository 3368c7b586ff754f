"""The auth REST API and the JSON handler base, over real sockets on 127.0.0.1."""

import asyncio
import hashlib
import re
import threading
import types

import pytest
import tornado.web
import ujson

import handlers.auth_api
from domain.clock import FakeClock
from domain.money import to_cents
from domain.users import Role
from handlers.auth_api import AUTH_ROUTES, LOGIN_FAILED
from handlers.http import JsonHandler, NotFoundHandler
from services.auth import TokenService, verify_password
from services.config import Config
from services.storage import Storage
from services.throttle import SignInThrottle
from services.users import UserDirectory

pytestmark = pytest.mark.filterwarnings(
    # pytest-tornado's io_loop fixture uses these two deprecated IOLoop calls.
    "ignore:make_current is deprecated; start the event loop first:DeprecationWarning",
    "ignore:clear_current is deprecated:DeprecationWarning",
)

SECRET = "test-secret-" + "x" * 40
GUEST_NAME = re.compile(r"guest-[0-9a-f]{8}")


class MeHandler(JsonHandler):
    """GET /api/me: the signed-in user, for exercising bearer_user."""

    def get(self):
        self.write_json({"username": self.bearer_user().username})


class TeachersOnlyHandler(JsonHandler):
    """GET /api/teachers-only: for exercising require_role."""

    def get(self):
        user = self.require_role("teacher", Role.ADMIN)
        self.write_json({"role": user.role.value})


class BrokenHandler(JsonHandler):
    """GET /api/broken: a bug, to show a 500 carries no detail."""

    def get(self):
        raise RuntimeError("secret internals /etc/passwd")


@pytest.fixture
def config_overrides():
    return {}


@pytest.fixture
def services(tmp_path, config_overrides):
    clock = FakeClock()
    config = Config(data_dir=tmp_path, password_hash_n=2**10, **config_overrides)
    storage = Storage(tmp_path / "t.db", clock)
    tokens = TokenService(SECRET, clock=clock, ttl_s=config.token_ttl_s)
    users = UserDirectory(storage=storage, tokens=tokens, starting_cash_cents=to_cents(config.starting_cash))
    sign_in = SignInThrottle(clock, sign_ups_per_minute=config.sign_ups_per_minute)
    yield types.SimpleNamespace(config=config, clock=clock, storage=storage, tokens=tokens, users=users,
                                sign_in=sign_in, engine_link=None)  # one process: the engine is here
    storage.close()


@pytest.fixture
def app(services):
    extra = {"services": services}
    return tornado.web.Application(
        [
            *AUTH_ROUTES(services),
            (r"/api/me", MeHandler, extra),
            (r"/api/teachers-only", TeachersOnlyHandler, extra),
            (r"/api/broken", BrokenHandler, extra),
        ],
        default_handler_class=NotFoundHandler,
        default_handler_args=extra,
        serve_traceback=True,  # even so, no traceback may reach the client
    )


@pytest.fixture
def call(http_server, http_client, http_port):
    """`await call(path, body)`: POST JSON (or `raw` bytes) and return (status, decoded body, headers)."""

    async def fetch(path, body=None, *, method="POST", raw=None, token=None, headers=None):
        headers = dict(headers or {})
        if token:
            headers["Authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (None if body is None else ujson.dumps(body))
        if method == "POST" and payload is None:
            payload = b""
        response = await http_client.fetch(
            f"http://127.0.0.1:{http_port}{path}", method=method, body=payload, headers=headers,
            raise_error=False, allow_nonstandard_methods=True,
        )
        decoded = ujson.loads(response.body) if response.body else None
        return response.code, decoded, response.headers

    return fetch


def assert_json_error(status, body, headers, expected_status, code=None):
    assert status == expected_status, body
    assert set(body) == {"error", "code"} and body["error"]
    if code:
        assert body["code"] == code
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert "Traceback" not in body["error"]


# -- register ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_register_returns_201_with_a_token_and_the_user(call, services):
    status, body, headers = await call("/api/auth/register", {"username": "Ada", "password": "correct horse"})
    assert status == 201
    assert headers["Content-Type"] == "application/json; charset=UTF-8"
    assert headers["Cache-Control"] == "no-store"
    user = services.storage.user_by_name("ada")
    assert body["user"] == {"userId": str(user.id), "username": "Ada", "name": "Ada", "role": "student"}
    assert services.tokens.verify(body["token"]).user_id == user.id
    assert body["portfolioIds"] == services.storage.portfolio_ids_of(user.id) and len(body["portfolioIds"]) == 1


@pytest.mark.gen_test
async def test_register_stores_only_a_salted_hash_and_a_funded_portfolio(call, services):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    user = services.storage.user_by_name("ada")
    assert user.password_hash.startswith("scrypt$1024$8$1$")
    assert "correct horse" not in user.password_hash
    assert verify_password("correct horse", user.password_hash)
    assert [p.cash_cents for p in services.storage.portfolios_of(user.id)] == [10_000_000]


@pytest.mark.parametrize("config_overrides", [{"starting_cash": __import__("decimal").Decimal("2500.55")}])
@pytest.mark.gen_test
async def test_register_uses_the_configured_starting_cash(call, services):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    user = services.storage.user_by_name("ada")
    assert services.storage.portfolios_of(user.id)[0].cash_cents == 250_055


@pytest.mark.parametrize("taken", ["ada", "ADA", "aDa"])
@pytest.mark.gen_test
async def test_register_of_a_taken_name_is_409(call, services, taken):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    assert_json_error(*await call("/api/auth/register", {"username": taken, "password": "other password"}),
                      409, "CONFLICT")
    assert services.storage.count_users() == 1


@pytest.mark.parametrize("body", [
    {"username": "ab", "password": "correct horse"},
    {"username": "ada lovelace", "password": "correct horse"},
    {"username": "x" * 33, "password": "correct horse"},
    {"username": "guest-12345678", "password": "correct horse"},
    {"username": "ada'--", "password": "correct horse"},
    {"username": "ada", "password": "short"},
    {"username": "ada", "password": "x" * 257},
])
@pytest.mark.gen_test
async def test_register_with_invalid_values_is_400_bad_request(call, services, body):
    assert_json_error(*await call("/api/auth/register", body), 400, "BAD_REQUEST")
    assert services.storage.count_users() == 0


@pytest.mark.parametrize("body", [
    {}, {"username": "ada"}, {"password": "correct horse"}, {"username": None, "password": "correct horse"},
    {"username": 123, "password": "correct horse"}, {"username": "ada", "password": 12345678},
    {"username": ["ada"], "password": "correct horse"}, {"username": "ada", "password": {"p": 1}},
    {"username": True, "password": "correct horse"},
])
@pytest.mark.gen_test
async def test_register_with_missing_or_wrongly_typed_fields_is_400_invalid_message(call, services, body):
    assert_json_error(*await call("/api/auth/register", body), 400, "INVALID_MESSAGE")
    assert services.storage.count_users() == 0


@pytest.mark.gen_test
async def test_register_ignores_unknown_fields_such_as_a_role(call, services):
    status, body, _ = await call("/api/auth/register",
                                 {"username": "ada", "password": "correct horse", "role": "admin"})
    assert status == 201 and body["user"]["role"] == "student"
    assert services.storage.user_by_name("ada").role is Role.STUDENT


@pytest.mark.gen_test
async def test_password_hashing_runs_off_the_ioloop_thread(call, monkeypatch):
    threads = []
    real_hash, real_check = handlers.auth_api.hash_password, handlers.auth_api.check_login

    def hash_spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_hash(*args, **kwargs)

    def check_spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real_check(*args, **kwargs)

    monkeypatch.setattr(handlers.auth_api, "hash_password", hash_spy)
    monkeypatch.setattr(handlers.auth_api, "check_login", check_spy)
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    await call("/api/auth/login", {"username": "ada", "password": "correct horse"})
    await call("/api/auth/login", {"username": "nobody", "password": "correct horse"})
    assert len(threads) == 3
    assert all(thread is not threading.main_thread() for thread in threads)


# -- login -------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_login_returns_a_token_for_the_registered_user(call, services):
    _, registered, _ = await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    status, body, _ = await call("/api/auth/login", {"username": "ADA", "password": "correct horse"})
    assert status == 200
    assert body["user"] == registered["user"]
    assert services.tokens.verify(body["token"]).user_id == int(body["user"]["userId"])


@pytest.mark.gen_test
async def test_login_token_carries_the_stored_role(call, services):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    services.storage.set_role("ada", Role.TEACHER)
    _, body, _ = await call("/api/auth/login", {"username": "ada", "password": "correct horse"})
    assert body["user"]["role"] == "teacher"
    assert services.tokens.verify(body["token"]).role == "teacher"


@pytest.mark.gen_test
async def test_wrong_password_and_unknown_user_get_identical_401s(call):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    wrong_password = await call("/api/auth/login", {"username": "ada", "password": "wrong horse"})
    unknown_user = await call("/api/auth/login", {"username": "bob", "password": "correct horse"})
    for status, body, headers in (wrong_password, unknown_user):
        assert_json_error(status, body, headers, 401, "UNAUTHORIZED")
        assert body == {"error": LOGIN_FAILED, "code": "UNAUTHORIZED"}
        assert headers["WWW-Authenticate"] == "Bearer"
    assert wrong_password[1] == unknown_user[1]
    assert dict(wrong_password[2]).keys() - {"Date"} == dict(unknown_user[2]).keys() - {"Date"}


@pytest.mark.gen_test
async def test_wrong_password_and_unknown_user_cost_the_same_scrypt_work(call, monkeypatch):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    costs = []
    real = hashlib.scrypt

    def counting(*args, **kwargs):
        costs.append((kwargs["n"], kwargs["r"], kwargs["p"]))
        return real(*args, **kwargs)

    monkeypatch.setattr(hashlib, "scrypt", counting)
    await call("/api/auth/login", {"username": "ada", "password": "wrong horse"})
    await call("/api/auth/login", {"username": "bob", "password": "wrong horse"})
    assert costs == [(2**10, 8, 1), (2**10, 8, 1)]


@pytest.mark.gen_test
async def test_guest_cannot_log_in_by_password(call):
    _, guest, _ = await call("/api/auth/guest", {"nickname": "Nick"})
    for password in ("", "None", "null", "anything at all"):
        status, body, _ = await call("/api/auth/login", {"username": guest["user"]["username"], "password": password})
        assert (status, body["error"]) == (401, LOGIN_FAILED)


@pytest.mark.parametrize("username", [
    "' OR '1'='1", "ada'; DROP TABLE users; --", "%", "_", "*", "\u0000", "ada\n", "x" * 5000, "",
])
@pytest.mark.gen_test
async def test_login_with_hostile_usernames_is_a_plain_401(call, services, username):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    status, body, _ = await call("/api/auth/login", {"username": username, "password": "correct horse"})
    assert (status, body["error"]) == (401, LOGIN_FAILED)
    assert services.storage.count_users() == 1


@pytest.mark.parametrize("body", [{}, {"username": "ada"}, {"username": 1, "password": "x"},
                                  {"username": "ada", "password": ["correct horse"]}])
@pytest.mark.gen_test
async def test_login_with_missing_or_wrongly_typed_fields_is_400(call, body):
    assert_json_error(*await call("/api/auth/login", body), 400, "INVALID_MESSAGE")


# -- guests ------------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_guest_gets_a_generated_name_and_a_student_account_without_password(call, services):
    status, body, _ = await call("/api/auth/guest", {"nickname": "  Zoë 🚀  "})
    assert status == 201
    user = body["user"]
    assert GUEST_NAME.fullmatch(user["username"])
    assert (user["name"], user["role"]) == ("Zoë 🚀", "student")
    stored = services.storage.user_by_id(int(user["userId"]))
    assert stored.password_hash is None and stored.display_name == "Zoë 🚀"
    assert services.tokens.verify(body["token"]).name == "Zoë 🚀"
    assert [p.cash_cents for p in services.storage.portfolios_of(stored.id)] == [10_000_000]


@pytest.mark.gen_test
async def test_guests_with_the_same_nickname_are_different_users(call):
    first = (await call("/api/auth/guest", {"nickname": "Nick"}))[1]["user"]
    second = (await call("/api/auth/guest", {"nickname": "Nick"}))[1]["user"]
    assert first["userId"] != second["userId"] and first["username"] != second["username"]


@pytest.mark.gen_test
async def test_guest_retries_when_the_generated_name_is_taken(call, services, monkeypatch):
    services.storage.create_user("guest-00000000", "Old", None, Role.STUDENT, 0)
    picks = iter(["00000000", "00000000", "0000beef"])
    monkeypatch.setattr(handlers.auth_api.secrets, "token_hex", lambda n: next(picks))
    status, body, _ = await call("/api/auth/guest", {"nickname": "Nick"})
    assert (status, body["user"]["username"]) == (201, "guest-0000beef")


@pytest.mark.parametrize("nickname", ["", "   ", "x" * 33, "a\nb", "\u202eevil", "tab\there"])
@pytest.mark.gen_test
async def test_guest_with_invalid_nickname_is_400(call, services, nickname):
    assert_json_error(*await call("/api/auth/guest", {"nickname": nickname}), 400, "BAD_REQUEST")
    assert services.storage.count_users() == 0


@pytest.mark.parametrize("body", [{}, {"nickname": None}, {"nickname": 7}, {"nickname": ["Nick"]}])
@pytest.mark.gen_test
async def test_guest_with_missing_or_wrongly_typed_nickname_is_400(call, body):
    assert_json_error(*await call("/api/auth/guest", body), 400, "INVALID_MESSAGE")


@pytest.mark.gen_test
async def test_guest_nickname_with_markup_is_kept_verbatim_as_data(call):
    status, body, _ = await call("/api/auth/guest", {"nickname": "<img src=x onerror=alert(1)>"})
    assert status == 201 and body["user"]["name"] == "<img src=x onerror=alert(1)>"


@pytest.mark.parametrize("config_overrides", [{"allow_guests": False}])
@pytest.mark.gen_test
async def test_guest_sign_in_switched_off_is_403(call, services):
    assert_json_error(*await call("/api/auth/guest", {"nickname": "Nick"}), 403, "FORBIDDEN")
    assert services.storage.count_users() == 0


# -- bodies every endpoint refuses -------------------------------------------------------


@pytest.mark.parametrize("raw", [
    b"", b"not json", b"{", b'{"username": "ada",}', b"[]", b'["ada", "pw"]', b'"string"', b"42", b"null",
    b"true", b'{"username": "ada"} trailing', b"\xff\xfe{}", b'{"username": "\xff"}',
    b'{"username": "ada", "password": NaN}', b'{"username": "ada", "password": 1e400}',
    b'{"username": "\\ud800", "password": "correct horse"}', b'{"\\udfff": 1}',
    b"[" * 5000 + b"]" * 5000, b'{"a":' * 100 + b"1" + b"}" * 100,
])
@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/guest"])
@pytest.mark.gen_test
async def test_bodies_that_are_not_a_plain_json_object_are_400_json(call, services, path, raw):
    assert_json_error(*await call(path, raw=raw), 400, "INVALID_MESSAGE")
    assert services.storage.count_users() == 0


@pytest.mark.parametrize("path", ["/api/auth/register", "/api/auth/login", "/api/auth/guest"])
@pytest.mark.gen_test
async def test_body_over_64_kib_is_400_json(call, services, path):
    body = {"username": "ada", "password": "correct horse", "nickname": "Nick", "pad": "x" * 64 * 1024}
    status, decoded, headers = await call(path, body)
    assert_json_error(status, decoded, headers, 400, "INVALID_MESSAGE")
    assert "64" in decoded["error"] or "65536" in decoded["error"]
    assert services.storage.count_users() == 0


# -- errors are JSON everywhere ----------------------------------------------------------


@pytest.mark.parametrize("path", ["/nope", "/api/auth", "/api/auth/register/extra", "/api/../etc/passwd"])
@pytest.mark.gen_test
async def test_unknown_path_is_404_json(call, path):
    assert_json_error(*await call(path, method="GET"), 404, "NOT_FOUND")


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE", "PATCH"])
@pytest.mark.gen_test
async def test_wrong_method_is_405_json(call, method):
    assert_json_error(*await call("/api/auth/login", method=method), 405, "METHOD_NOT_ALLOWED")


@pytest.mark.gen_test
async def test_a_bug_is_500_json_without_details(call):
    status, body, headers = await call("/api/broken", method="GET")
    assert_json_error(status, body, headers, 500, "INTERNAL")
    assert "passwd" not in body["error"] and "RuntimeError" not in body["error"]


# -- bearer tokens -----------------------------------------------------------------------


async def register(call, username="ada"):
    _, body, _ = await call("/api/auth/register", {"username": username, "password": "correct horse"})
    return body["token"]


@pytest.mark.gen_test
async def test_bearer_token_identifies_the_user(call):
    token = await register(call)
    status, body, _ = await call("/api/me", method="GET", token=token)
    assert (status, body) == (200, {"username": "ada"})
    status, body, _ = await call("/api/me", method="GET", headers={"Authorization": f"bearer  {token} "})
    assert (status, body) == (200, {"username": "ada"})


@pytest.mark.parametrize("authorization", [
    None, "", "Bearer", "Bearer ", "Basic YWRhOnB3", "Token abc", "Bearer not.a.token", "Bearer a b c",
])
@pytest.mark.gen_test
async def test_missing_or_malformed_bearer_is_401_json(call, authorization):
    headers = {} if authorization is None else {"Authorization": authorization}
    status, body, response_headers = await call("/api/me", method="GET", headers=headers)
    assert_json_error(status, body, response_headers, 401, "UNAUTHORIZED")
    assert response_headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.gen_test
async def test_expired_token_is_401(call, services):
    token = await register(call)
    services.clock.advance(services.config.token_ttl_s)
    status, body, headers = await call("/api/me", method="GET", token=token)
    assert_json_error(status, body, headers, 401, "UNAUTHORIZED")
    assert "expired" in body["error"]


@pytest.mark.gen_test
async def test_token_of_an_unknown_user_is_401(call, services):
    from domain.users import User

    ghost = User(id=999, username="ghost", display_name="Ghost", role=Role.ADMIN, created_at=0.0)
    status, body, headers = await call("/api/me", method="GET", token=services.tokens.issue(ghost))
    assert_json_error(status, body, headers, 401, "UNAUTHORIZED")


@pytest.mark.gen_test
async def test_token_signed_with_another_secret_is_401(call, services):
    token = await register(call)
    other = TokenService("o" * 64, clock=services.clock, ttl_s=60)
    forged = other.issue(services.storage.user_by_name("ada"))
    assert (await call("/api/me", method="GET", token=forged))[0] == 401
    assert (await call("/api/me", method="GET", token=token))[0] == 200


@pytest.mark.gen_test
async def test_stored_role_decides_not_the_token_role_claim(call, services):
    token = await register(call)  # token says "student"
    status, body, headers = await call("/api/teachers-only", method="GET", token=token)
    assert_json_error(status, body, headers, 403, "FORBIDDEN")
    services.storage.set_role("ada", Role.TEACHER)  # promoted: the same token now has teacher rights
    assert (await call("/api/teachers-only", method="GET", token=token))[:2] == (200, {"role": "teacher"})
    services.storage.set_role("ada", Role.STUDENT)  # demoted: rights gone at once, token unchanged
    assert (await call("/api/teachers-only", method="GET", token=token))[0] == 403


@pytest.mark.gen_test
async def test_token_claiming_admin_for_a_student_gets_no_admin_rights(call, services):
    await register(call)
    student = services.storage.user_by_name("ada")
    lying = services.tokens.issue(type(student)(student.id, "ada", "ada", Role.ADMIN, 0.0))
    assert (await call("/api/teachers-only", method="GET", token=lying))[0] == 403


@pytest.mark.gen_test
async def test_require_role_without_a_token_is_401_not_403(call):
    assert (await call("/api/teachers-only", method="GET"))[0] == 401


@pytest.mark.gen_test
async def test_verify_only_server_refuses_to_issue_tokens(call, services):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    services.users = UserDirectory(storage=services.storage, starting_cash_cents=0,
                                   tokens=TokenService(None, clock=services.clock, ttl_s=60, public_key=public_pem))
    for path, body in (("/api/auth/register", {"username": "ada", "password": "correct horse"}),
                       ("/api/auth/guest", {"nickname": "Nick"})):
        assert_json_error(*await call(path, body), 403, "FORBIDDEN")
    assert services.storage.count_users() == 0


# -- throttling ----------------------------------------------------------------------------


@pytest.mark.gen_test
async def test_five_wrong_passwords_shut_the_account_for_a_while_even_to_the_right_one(call, services):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    for _ in range(5):
        assert (await call("/api/auth/login", {"username": "ada", "password": "wrong horse"}))[0] == 401
    status, body, headers = await call("/api/auth/login", {"username": "ADA", "password": "correct horse"})
    assert_json_error(status, body, headers, 429, "RATE_LIMITED")
    assert headers["Retry-After"] == "12" and "wrong passwords" in body["error"]
    assert (await call("/api/auth/login", {"username": "bob", "password": "x"}))[0] == 401  # others unaffected
    services.clock.advance(12)
    assert (await call("/api/auth/login", {"username": "ada", "password": "correct horse"}))[0] == 200


@pytest.mark.gen_test
async def test_a_right_password_gives_its_try_back(call):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})

    async def login(password):
        return (await call("/api/auth/login", {"username": "ada", "password": password}))[0]

    assert [await login("wrong") for _ in range(4)] == [401] * 4
    assert [await login("correct horse") for _ in range(3)] == [200] * 3  # the fifth try is still there
    assert [await login("wrong"), await login("correct horse")] == [401, 429]


@pytest.mark.gen_test
async def test_guesses_sent_in_parallel_cannot_outrun_the_count(call):
    await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    replies = await asyncio.gather(*(call("/api/auth/login", {"username": "ada", "password": f"guess {n}"})
                                     for n in range(40)))
    statuses = sorted(status for status, _, _ in replies)
    assert statuses == [401] * 5 + [429] * 35


@pytest.mark.gen_test
@pytest.mark.parametrize("config_overrides", [{"sign_ups_per_minute": 3}])
async def test_one_address_gets_a_burst_of_new_accounts_then_one_every_so_often(call, services):
    statuses = [(await call("/api/auth/guest", {"nickname": f"kid {n}"}))[0] for n in range(7)]
    assert statuses == [201] * 6 + [429]
    status, body, headers = await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    assert_json_error(status, body, headers, 429, "RATE_LIMITED")
    assert headers["Retry-After"] == "20"
    services.clock.advance(20)
    assert (await call("/api/auth/register", {"username": "ada", "password": "correct horse"}))[0] == 201
    assert services.users.by_name("ada") is not None


# -- password change ---------------------------------------------------------------------


@pytest.mark.gen_test
async def test_a_user_changes_their_password_with_the_current_one_and_only_the_new_one_logs_in(call):
    _, registered, _ = await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    status, body, _ = await call("/api/auth/password", {"currentPassword": "correct horse",
                                                        "newPassword": "battery staple"}, token=registered["token"])
    assert status == 200 and body["user"] == registered["user"] and body["token"]
    status, _, _ = await call("/api/auth/login", {"username": "ada", "password": "correct horse"})
    assert status == 401
    status, _, _ = await call("/api/auth/login", {"username": "ada", "password": "battery staple"})
    assert status == 200


@pytest.mark.gen_test
async def test_a_wrong_current_password_changes_nothing(call, services):
    _, registered, _ = await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    before = services.storage.user_by_name("ada").password_hash
    status, body, headers = await call("/api/auth/password", {"currentPassword": "wrong horse",
                                                              "newPassword": "battery staple"},
                                       token=registered["token"])
    assert_json_error(status, body, headers, 401, "UNAUTHORIZED")
    assert services.storage.user_by_name("ada").password_hash == before


@pytest.mark.gen_test
@pytest.mark.parametrize("body, expected", [
    ({"currentPassword": "correct horse", "newPassword": "short"}, 400),
    ({"currentPassword": "correct horse"}, 400),
    ({"currentPassword": 7, "newPassword": "battery staple"}, 400),
    ({"currentPassword": "correct horse", "newPassword": "x" * 10_000}, 400),
])
async def test_a_bad_new_password_or_body_is_400_and_changes_nothing(call, services, body, expected):
    _, registered, _ = await call("/api/auth/register", {"username": "ada", "password": "correct horse"})
    before = services.storage.user_by_name("ada").password_hash
    status, answer, headers = await call("/api/auth/password", body, token=registered["token"])
    assert_json_error(status, answer, headers, expected)
    assert services.storage.user_by_name("ada").password_hash == before


@pytest.mark.gen_test
async def test_a_password_change_needs_a_token_and_a_guest_has_no_password_to_change(call):
    status, body, headers = await call("/api/auth/password", {"currentPassword": "a" * 8, "newPassword": "b" * 8})
    assert_json_error(status, body, headers, 401, "UNAUTHORIZED")
    _, guest, _ = await call("/api/auth/guest", {"nickname": "Kim"})
    status, body, headers = await call("/api/auth/password", {"currentPassword": "a" * 8, "newPassword": "b" * 8},
                                       token=guest["token"])
    assert_json_error(status, body, headers, 403, "FORBIDDEN")
