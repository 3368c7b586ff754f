/* Sign-in: guest nickname (classroom mode), log in, register; the token is kept for this tab only. */

import { $ } from "../format.js";
import { auth } from "../api.js";

export function init(app) {
  const error = $("#signin-error");

  async function attempt(call, button) {
    error.textContent = "";
    button.disabled = true;
    try {
      const { token, user } = await call();
      app.signIn({ token, userId: user.userId, name: user.name, username: user.username, role: user.role });
    } catch (failure) {
      error.textContent = failure.status === 403 && failure.message.includes("guest")
        ? "Guest sign-in is switched off on this server: log in with an account."
        : failure.message;
    } finally {
      button.disabled = false;
    }
  }

  $("#guest-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const nickname = $("#guest-nickname").value.trim();
    if (!nickname) { error.textContent = "Type a nickname first."; return; }
    attempt(() => auth.guest(nickname), event.submitter || $("#guest-form button"));
  });

  $("#login-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const register = event.submitter && event.submitter.value === "register";
    const username = $("#login-username").value.trim();
    const password = $("#login-password").value;
    if (!form.checkValidity()) {
      error.textContent = "Usernames are 3–32 letters, digits, _ . or -; passwords at least 8 characters.";
      return;
    }
    attempt(() => (register ? auth.register : auth.login)(username, password), event.submitter || $("#login-button"));
  });

  $("#password-form").addEventListener("submit", async (event) => {
    event.preventDefault();
    const form = event.currentTarget;
    const status = $("#password-status");
    const button = form.querySelector("button");
    button.disabled = true;
    try {
      await auth.changePassword($("#password-current").value, $("#password-new").value);
      form.reset();
      status.textContent = "Password changed: use the new one next time you log in.";
    } catch (failure) {
      status.textContent = failure.status === 401 ? "The current password is not right." : failure.message;
    } finally {
      button.disabled = false;
    }
  });
}
