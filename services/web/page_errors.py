"""The public pages' language and error pages: which language a request gets, and the HTML page
every failure of a page becomes (404, 429, 503, ...), in that language.

Design: docs/developers/design/public-pages.md
"""

from __future__ import annotations

import functools
import logging
from typing import Final

from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from services.bootstrap import Ledger
from services.http.app_state import ledger_of
from services.http.ledger_problems import ledger_problem
from services.http.problems import ProblemError
from services.http.route_spec import Endpoint
from services.ledger.errors import LedgerError
from services.rules.languages import choose_language
from services.web import pages
from services.web.page_responses import DEPENDENCY_ERRORS, PageError, html_response
from services.web.pages import N_, Message, PageLanguage

log = logging.getLogger(__name__)

#: the query parameter of the pages' language switch
LANG_PARAM: Final = "lang"
_STATE: Final = "page_language"

BAD_LINK: Final = (
    N_("This link cannot be used"),
    N_("The link may be incomplete, or too old to use."),
)
BAD_FORM: Final = (
    N_("This form cannot be used"),
    N_("Open the link from your message again and retry."),
)
TOO_MANY: Final = (
    N_("Please wait a moment"),
    N_("There were too many requests. Nothing was changed. Try again in %(seconds)s s."),
)
RETRY_SOON: Final = (N_("Please try again"), N_("Nothing was changed. Retry in a few seconds."))
FAILED: Final = (N_("This request failed"), N_("Nothing was changed. Retry in a few seconds."))
UNAVAILABLE: Final = (N_("Please try again"), N_("Nothing was changed. Retry in a minute."))
BROKEN: Final = (N_("Something went wrong"), N_("Nothing was changed. Retry later."))


def page_error(
    status: int,
    words: tuple[str, str],
    headers: dict[str, str] | None = None,
    values: dict[str, object] | None = None,
) -> PageError:
    """The error page for `status` with a (heading, message) pair of msgids."""
    heading, message = words
    return PageError(status, heading, message, headers, values)


def bad_link() -> PageError:
    return page_error(404, BAD_LINK)


def bad_form(status: int = 400) -> PageError:
    return page_error(status, BAD_FORM)


def request_language(request: Request, sealed: str | None = None) -> PageLanguage:
    """The language of the page answering `request`: its `?lang=` (the language switch), the
    language `sealed` in its link, its Accept-Language, else LEDGER_DEFAULT_LANGUAGE. The page
    remembers it, so an error page after the link opened speaks the link's language too."""
    code = choose_language(
        asked=request.query_params.get(LANG_PARAM),
        sealed=sealed,
        accept_language=request.headers.get("accept-language"),
        default=ledger_of(request).settings.default_language,
    )
    language = pages.page_language(code)
    setattr(request.state, _STATE, language)
    return language


def chosen_language(request: Request) -> PageLanguage:
    """The language the page chose so far (with a link's sealed language once it opened)."""
    chosen = getattr(request.state, _STATE, None)
    return chosen if isinstance(chosen, PageLanguage) else request_language(request)


def error_html(ledger: Ledger, language: PageLanguage, error: PageError) -> HTMLResponse:
    html = pages.error_page(
        language,
        controller=ledger.settings.controller_name,
        heading=Message(error.heading),
        message=Message(error.message, error.values),
    )
    return html_response(html, error.status, error.headers)


def too_many_requests(ledger: Ledger, language: PageLanguage, seconds: int) -> HTMLResponse:
    """The pages' 429 (services/web/page_limits.py): a page like the others, with their
    headers and Retry-After, never a JSON problem."""
    error = page_error(429, TOO_MANY, {"Retry-After": str(seconds)}, {"seconds": seconds})
    return error_html(ledger, language, error)


def html_errors(endpoint: Endpoint) -> Endpoint:
    """Every failure of a page is an HTML page too, in the page's language, never a JSON
    problem or a stack trace."""

    @functools.wraps(endpoint)
    async def wrapped(request: Request) -> Response:
        ledger = ledger_of(request)
        try:
            return await endpoint(request)
        except PageError as exc:
            error = exc
        except (ProblemError, LedgerError) as exc:
            # every page's key is derived from its link: a retry repeats it
            problem = exc if isinstance(exc, ProblemError) else ledger_problem(exc, keyed=True)
            words = RETRY_SOON if problem.status == 503 else FAILED
            error = page_error(problem.status, words, problem.headers)
        except DEPENDENCY_ERRORS as exc:
            log.warning("page unavailable: %s", type(exc).__name__)
            error = page_error(503, UNAVAILABLE)
        except Exception:
            log.exception("unexpected error on a public page")
            error = page_error(500, BROKEN)
        return error_html(ledger, chosen_language(request), error)

    return wrapped
