"""Watch a Playwright browser context for Content-Security-Policy violations.

A strict policy fails silently for a person: a blocked stylesheet, script or form redirect
leaves the page unstyled or a button dead, with only a console line. Browser tests therefore
collect every violation, from two sources so that neither can miss one unnoticed: the
`securitypolicyviolation` event of each page's document (reported through a binding that
survives navigation) and Chromium's "Refused to ..." console errors.
"""

from __future__ import annotations

from typing import Any

_LISTENER = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__custodianCspViolation({
    directive: event.effectiveDirective,
    blocked: event.blockedURI,
    page: event.documentURI,
  });
});
"""


def watch_csp(context: Any) -> list[str]:
    """Start collecting the CSP violations of every page of `context`; return the live list.

    Call it before the first navigation.
    """
    violations: list[str] = []

    def on_event(source: Any, violation: dict[str, str]) -> None:
        violations.append(
            f"{violation['directive']} blocked {violation['blocked'] or 'inline'!r} "
            f"on {violation['page']}"
        )

    def on_console(message: Any) -> None:
        if "Content Security Policy" in message.text:
            violations.append(message.text)

    context.expose_binding("__custodianCspViolation", on_event)
    context.add_init_script(_LISTENER)
    context.on("console", on_console)
    return violations


def prove_watch_works(page: Any, violations: list[str]) -> None:
    """Break the policy on purpose (an inline style) and check the watch reports it.

    Without this, a watch that silently saw nothing (or a missing policy) would pass as
    "no violations".
    """
    before = len(violations)
    page.evaluate(
        "() => { const s = document.createElement('style'); s.textContent = 'p {}';"
        " document.head.append(s); }"
    )
    page.wait_for_timeout(200)
    assert len(violations) > before, "the CSP watch saw no violation of a deliberate inline style"
    assert any("style-src" in violation for violation in violations[before:]), violations[before:]
    del violations[before:]
