"""Agent screens of the knowledge base, the suggestions panel, and the public help site."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import translation
from django.utils.feedgenerator import Atom1Feed
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from madoguchi.accounts.models import Brand, User
from madoguchi.accounts.queries import role_required, workspace_id_of, workspace_of
from madoguchi.kb import actions, forms, queries
from madoguchi.kb.markdown import render_markdown, reply_text, summary
from madoguchi.kb.models import Article, ArticleStatus

# -- agents ----------------------------------------------------------------------------------


ARTICLES_PER_PAGE = 50


@role_required("agent")
def index(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    status = request.GET.get("status", "")
    status = status if status in ArticleStatus.values else ""
    q = request.GET.get("q", "").strip()[:200]
    page = None
    if q:
        rows = queries.find_articles(user, q, status=status)
    else:
        page = Paginator(queries.articles_for(user, status=status), ARTICLES_PER_PAGE).get_page(request.GET.get("page"))
        rows = list(page.object_list)
    done, total = queries.embedding_progress(workspace_id_of(user))
    return render(
        request,
        "kb/index.html",
        {
            "articles": rows, "page": page, "q": q, "status": status, "statuses": ArticleStatus.choices, "embed_done": done, "embed_total": total,
            "to_fix": queries.read_a_lot_help_little(workspace_id_of(user)) if user.has_role("manager") else [],
            "proposals": queries.open_proposals(workspace_id_of(user)) if user.has_role("manager") else [],
        },
    )


@role_required("agent")
def new_article(request: HttpRequest) -> HttpResponse:
    """Write a new article; it starts as a draft (a manager publishes it)."""
    user: User = request.user  # type: ignore[assignment]
    form = forms.ArticleForm(request.POST or None, workspace_id=workspace_id_of(user))
    if request.method == "POST" and form.is_valid():
        try:
            a = actions.do_create_article(workspace_of(user), author=user, **form.cleaned_data)
        except actions.KbError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, _("Draft saved."))
            return redirect("kb:article", article_id=a.pk)
    return render(request, "kb/new.html", {"form": form})


@role_required("agent")
def article(request: HttpRequest, article_id: int) -> HttpResponse:
    """An article with its status buttons, editor and history; a refused edit keeps what was typed."""
    user: User = request.user  # type: ignore[assignment]
    a = queries.access_article(user, article_id)
    initial = {"title": a.title, "language": a.language, "category": a.category_id, "brand": a.brand_id, "body": a.body}
    may_edit = actions.may_edit(a, user)
    # Without the right to edit, an agent proposes a new text (title and body) for a manager to apply.
    form = forms.ArticleForm(request.POST or None, initial=initial, workspace_id=a.workspace_id, text_only=not may_edit)
    if request.method == "POST" and form.is_valid():
        try:
            if may_edit:
                actions.do_update_article(a, author=user, **form.cleaned_data)
                messages.success(request, _("Article saved."))
            else:
                proposal = actions.do_propose_change(a, author=user, title=form.cleaned_data["title"], body=form.cleaned_data["body"])
                messages.success(request, _("Your change is saved as proposal v%(n)s. Readers see it once a manager applies it.") % {"n": proposal.number})
        except actions.KbError as exc:
            form.add_error(None, str(exc))
        else:
            return redirect("kb:article", article_id=a.pk)
    return render(
        request,
        "kb/article.html",
        {
            "article": a, "form": form, "html": render_markdown(a.body), "versions": queries.version_rows(a),
            "moves": actions.allowed_statuses(a, user), "may_edit": may_edit,
            "translations": queries.linked_translations(a), "translation_candidates": queries.translation_candidates(a),
        },
    )


@require_POST
@role_required("agent")
def translations(request: HttpRequest, article_id: int) -> HttpResponse:
    """Link an article in another language as this one's translation, or unlink one."""
    user: User = request.user  # type: ignore[assignment]
    a = queries.access_article(user, article_id)
    try:
        if request.POST.get("link"):
            actions.do_link_translations(a, queries.access_article(user, int(request.POST["link"])), actor=user)
            messages.success(request, _("Translation linked."))
        elif request.POST.get("unlink"):
            actions.do_unlink_translation(queries.access_translation(user, a, int(request.POST["unlink"])), actor=user)
            messages.success(request, _("Translation unlinked."))
    except actions.KbError as exc:
        messages.error(request, str(exc))
    except ValueError:
        messages.error(request, _("That article does not exist."))
    return redirect("kb:article", article_id=a.pk)


MAX_IMPORT_BYTES = 20 * 1024 * 1024


@role_required("manager")
def import_file(request: HttpRequest) -> HttpResponse:
    """Upload a JSON Lines or CSV file of articles; the import runs in the background (its page
    shows the progress, then the summary and each bad row)."""
    user: User = request.user  # type: ignore[assignment]
    if request.method == "POST":
        upload = request.FILES.get("file")
        if upload is None:
            messages.error(request, _("Choose a file to import."))
        elif (upload.size or 0) > MAX_IMPORT_BYTES:
            messages.error(request, _("The file is larger than %(mb)s MB.") % {"mb": MAX_IMPORT_BYTES // 2**20})
        else:
            status = request.POST.get("status", ArticleStatus.PUBLISHED)
            status = status if status in (ArticleStatus.DRAFT, ArticleStatus.PUBLISHED) else ArticleStatus.DRAFT
            job = actions.do_queue_import(workspace_of(user), upload.read(), upload.name or "", actor=user, status=status)
            return redirect("kb:import_job", job_id=job.pk)
    return render(request, "kb/import.html", {"jobs": queries.recent_imports(workspace_id_of(user))})


@role_required("manager")
def import_job(request: HttpRequest, job_id: int) -> HttpResponse:
    """One import: its progress while it runs (the page refreshes itself; ?format=json for
    scripts), then what it did."""
    job = queries.access_import(request.user, job_id)  # type: ignore[arg-type]
    if request.GET.get("format") == "json":
        fields = ("state", "total", "done_rows", "created", "updated", "unchanged", "error_count", "message")
        return JsonResponse({"id": job.pk, **{f: getattr(job, f) for f in fields}, "errors": job.errors})
    return render(request, "kb/import_job.html", {"job": job})


@require_POST
@role_required("agent")
def set_status(request: HttpRequest, article_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    a = queries.access_article(user, article_id)
    try:
        actions.do_set_status(a, request.POST.get("status", ""), actor=user)
    except actions.KbError as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("The article is now %(status)s.") % {"status": a.get_status_display()})
    return redirect("kb:article", article_id=a.pk)


@require_POST
@role_required("agent")
def restore(request: HttpRequest, article_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    a = queries.access_article(user, article_id)
    try:
        actions.do_restore_version(a, int(request.POST.get("version", "0")), actor=user)
    except actions.KbError as exc:
        messages.error(request, str(exc))
    except ValueError:
        messages.error(request, _("That version does not exist."))
    return redirect("kb:article", article_id=a.pk)


SUGGESTION_QUALITY = 0.5


@role_required("agent")
def suggestions(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """The side panel of a conversation: articles for the customer's latest message."""
    from madoguchi.inbox import queries as inbox_queries

    conversation = inbox_queries.access_conversation(request.user, conversation_id)  # type: ignore[arg-type]
    q = request.GET.get("q", "").strip()[:1000] or queries.latest_customer_text(conversation)
    results = queries.search(conversation.workspace_id, q, limit=5) if q else []
    # Articles the embedding found no closer to the message than the rest of the knowledge base
    # are noise beside a reply: left out. The bar is half the help site's: an agent judges a
    # near miss in a second, a customer does not.
    results = [r for r in results if r.quality >= SUGGESTION_QUALITY or not r.checked]
    similar = queries.similar_conversations(conversation.workspace_id, q, exclude=conversation.pk) if q else []
    items = [
        {"result": r, "url": request.build_absolute_uri(reverse("kb:public_article", args=[r.article.pk])), "text": reply_text(r.article.body)}
        for r in results
    ]
    earlier = [
        {
            "similar": s,
            "url": request.build_absolute_uri(reverse("kb:public_article", args=[s.article.pk])) if s.article else "",
        }
        for s in similar
    ]
    return render(request, "kb/_suggestion_list.html", {"items": items, "earlier": earlier, "conversation": conversation})


@require_POST
@role_required("agent")
def suggestion_used(request: HttpRequest, article_id: int) -> HttpResponse:
    """The agent inserted this article into a reply: counted per day, a signal for ranking."""
    a = queries.access_article(request.user, article_id)  # type: ignore[arg-type]
    if a.status == ArticleStatus.PUBLISHED:
        actions.do_record_insert(a)
    return HttpResponse(status=204)


@require_POST
@role_required("agent")
def save_as_faq(request: HttpRequest, conversation_id: int) -> HttpResponse:
    from madoguchi.inbox import queries as inbox_queries

    user: User = request.user  # type: ignore[assignment]
    conversation = inbox_queries.access_conversation(user, conversation_id)
    try:
        a = actions.do_save_conversation_as_faq(conversation, actor=user)
    except actions.KbError as exc:
        messages.error(request, str(exc))
        return redirect("inbox:conversation", conversation_id=conversation.pk)
    messages.success(request, _("Draft FAQ created from the conversation."))
    return redirect("kb:article", article_id=a.pk)


# -- the public help site --------------------------------------------------------------------

VISITOR_COOKIE = "mdg_visitor"
_BOT_MARKERS = ("bot", "crawler", "spider", "slurp", "preview", "curl", "wget", "python-requests", "httpx")


def _is_bot(request: HttpRequest) -> bool:
    agent = request.headers.get("User-Agent", "").lower()
    return not agent or any(m in agent for m in _BOT_MARKERS)


def _visitor(request: HttpRequest) -> tuple[str, bool]:
    """An anonymous random id kept in a first-party cookie (no tracking across sites)."""
    raw = request.COOKIES.get(VISITOR_COOKIE, "")
    if len(raw) == 32 and raw.isalnum():
        return raw, False
    return secrets.token_hex(16), True


def _with_visitor(response: HttpResponse, visitor: str, fresh: bool) -> HttpResponse:
    if fresh:
        response.set_cookie(VISITOR_COOKIE, visitor, max_age=365 * 86400, httponly=True, samesite="Lax")
    return response


def _public_article(article_id: int) -> Article:
    a = Article.objects.select_related("category", "brand").filter(pk=article_id, status=ArticleStatus.PUBLISHED).first()
    if a is None:
        raise Http404
    return a


def _brand(brand_id: int) -> Brand:
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        raise Http404
    return brand


HELP_LANGUAGES = ("ja", "en")
LANGUAGE_COOKIE = "mdg_help_lang"


def _chosen_language(request: HttpRequest) -> str:
    """The language the reader picked with the switch: on this link (?lang=) or earlier (cookie)."""
    lang = request.GET.get("lang", "") or request.COOKIES.get(LANGUAGE_COOKIE, "")
    return lang if lang in HELP_LANGUAGES else ""


def _reader_language(request: HttpRequest) -> str:
    """The language switch wins; otherwise the language the reader's browser asks for.
    Without either (crawlers, feed readers) every language is listed: ""."""
    asked = (translation.get_language() or "")[:2] if request.headers.get("Accept-Language") else ""
    lang = _chosen_language(request) or asked
    return lang if lang in HELP_LANGUAGES else ""


def _language_name(code: str) -> str:
    """A language's name in that language (日本語, English), for readers who read only it."""
    try:
        return str(translation.get_language_info(code)["name_local"])
    except KeyError:
        return code


def _help_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A help site page in the language the reader picked, headings and buttons included, and
    the pick kept for the next pages (a category, an article) in a first-party cookie."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        lang = _chosen_language(request)
        if not lang:
            return view(request, *args, **kwargs)
        with translation.override(lang):
            response = view(request, *args, **kwargs)
        if request.GET.get("lang") == lang and request.COOKIES.get(LANGUAGE_COOKIE) != lang:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="Lax")
        return response

    return wrapped


def _language_versions(request: HttpRequest) -> dict[str, object]:
    """What a listing page (home, category) tells search engines: it exists in Japanese
    (?lang=ja) and English (?lang=en), and the address without ?lang= serves either."""
    asked = request.GET.get("lang", "")
    return {"page_url": request.build_absolute_uri(request.path), "lang_param": asked if asked in HELP_LANGUAGES else "", "languages": HELP_LANGUAGES}


@_help_page
def help_home(request: HttpRequest, brand_id: int) -> HttpResponse:
    brand = _brand(brand_id)
    lang = _reader_language(request)
    ctx = queries.help_home(brand, lang=lang)
    return render(request, "kb/help_home.html", {"brand": brand, "lang": lang, **ctx, **_language_versions(request)})


class _HelpFeed(Atom1Feed):
    """Atom with each article's full HTML as <content> beside the plain-text <summary>."""

    def add_item_elements(self, handler, item) -> None:
        super().add_item_elements(handler, item)
        if item.get("content_html"):
            handler.addQuickElement("content", item["content_html"], {"type": "html"})


def help_feed(request: HttpRequest, brand_id: int, category_id: int | None = None) -> HttpResponse:
    """Atom feed of a brand's (or one category's) newest published articles: the help site is
    the source, social the pipe. Atom (RFC 4287): the feed and every entry have an id, a title
    and an updated date; entries carry their HTML as content and a link to the article."""
    brand = _brand(brand_id)
    category = None
    if category_id is not None:
        category = queries.help_category(brand, category_id)
        if category is None:
            raise Http404
    title = _("%(brand)s help center") % {"brand": brand.name}
    if category is not None:
        title = f"{title} · {category.name}"
    home = request.build_absolute_uri(
        reverse("kb:help_category", args=[brand.pk, category.pk]) if category else reverse("kb:help_home", args=[brand.pk])
    )
    feed = _HelpFeed(title=title, link=home, description="", feed_url=request.build_absolute_uri(), feed_guid=request.build_absolute_uri(), author_name=brand.name)
    for a in queries.newest_published_for(brand, category=category):
        feed.add_item(
            title=a.title,
            link=request.build_absolute_uri(reverse("kb:public_article", args=[a.pk])),
            description=queries.snippet(a.body, set(), length=280),
            content_html=render_markdown(a.body),
            pubdate=a.published_at or a.created_at,
            updateddate=a.updated_at,
            unique_id=request.build_absolute_uri(reverse("kb:public_article", args=[a.pk])),
        )
    return HttpResponse(feed.writeString("utf-8"), content_type="application/atom+xml; charset=utf-8")


def help_sitemap(request: HttpRequest, brand_id: int) -> HttpResponse:
    """The brand's help site for search engines: its home, its category pages and its articles."""
    brand = _brand(brand_id)
    articles = [(request.build_absolute_uri(reverse("kb:public_article", args=[a.pk])), a.updated_at) for a in queries.newest_published_for(brand, limit=49_000)]
    pages = [(request.build_absolute_uri(reverse("kb:help_home", args=[brand.pk])), max((u for _loc, u in articles), default=None))]
    pages += [(request.build_absolute_uri(reverse("kb:help_category", args=[brand.pk, c.pk])), None) for c in queries.help_categories(brand)]
    return render(request, "kb/sitemap.xml", {"urls": pages + articles}, content_type="application/xml")


@_help_page
def help_category(request: HttpRequest, brand_id: int, category_id: int) -> HttpResponse:
    brand = Brand.objects.filter(pk=brand_id).first()
    category = queries.help_category(brand, category_id) if brand else None
    if brand is None or category is None:
        raise Http404
    lang = _reader_language(request)
    articles = queries.published_in(category, brand, lang=lang)
    subcategories = queries.help_subcategories(category, brand, lang=lang)
    return render(
        request,
        "kb/help_category.html",
        {"brand": brand, "category": category, "articles": articles, "subcategories": subcategories, **_language_versions(request)},
    )


@_help_page
def help_search(request: HttpRequest, brand_id: int) -> HttpResponse:
    brand = Brand.objects.filter(pk=brand_id).first()
    if brand is None:
        raise Http404
    q = request.GET.get("q", "").strip()[:200]
    # Articles in the reader's language, as on the home page (so a Japanese reader does not get
    # the English translation of the same answer beside it); any language when none answers well.
    lang = _reader_language(request)
    # Instant results are not counted while the visitor types; the JavaScript asks once more
    # with log=1 when typing pauses, and a submitted search is always counted. Bots never.
    log = "help" if q and (not request.GET.get("partial") or request.GET.get("log")) and not _is_bot(request) else ""
    results = queries.search(brand.workspace_id, q, limit=10, lang=lang, log=log, any_lang=True, brand_id=brand.pk) if q else []
    # The leading results that clearly answer, then a few more under their own heading (in rank
    # order: a good result ranked below a weak one stays below it).
    lead = next((i for i, r in enumerate(results) if not r.good), len(results))
    good, weak = results[:lead], results[lead:][: 3 if lead else 5]
    template = "kb/_help_results.html" if request.GET.get("partial") else "kb/help_search.html"
    return render(request, template, {"brand": brand, "q": q, "good": good, "weak": weak})


_JSON_IN_HTML = str.maketrans({"<": "\\u003c", ">": "\\u003e", "&": "\\u0026"})


def _faq_json_ld(a: Article, html: str, url: str) -> str:
    """schema.org FAQPage data for an article whose title is a question (its body the answer);
    "" for the others (an announcement or a how-to is no FAQ). Safe inside a <script> element."""
    if not a.title.rstrip().endswith(("?", "？")):
        return ""
    data = {
        "@context": "https://schema.org",
        "@type": "FAQPage",
        "inLanguage": a.language,
        "url": url,
        "mainEntity": [{"@type": "Question", "name": a.title, "acceptedAnswer": {"@type": "Answer", "text": summary(html, length=5000)}}],
    }
    return json.dumps(data, ensure_ascii=False).translate(_JSON_IN_HTML)


@_help_page
def public_article(request: HttpRequest, article_id: int, slug: str = "") -> HttpResponse:
    a = _public_article(article_id)
    visitor, fresh = _visitor(request)
    if not _is_bot(request):
        actions.do_record_view(a)
    related = queries.related_articles(a)
    # The visitor's vote: None before voting, False when the article did not help them.
    vote_ = a.votes.filter(visitor=visitor).values_list("helpful", flat=True).first() if not fresh else None
    translations = queries.translations_of(a)
    html = render_markdown(a.body)
    canonical = request.build_absolute_uri(reverse("kb:public_article", args=[a.pk]))
    # Search engines want every language version to list all of them, itself included.
    alternates = [(a.language, canonical)] + [
        (t.language, request.build_absolute_uri(reverse("kb:public_article", args=[t.pk]))) for t in translations
    ] if translations else []
    response = render(
        request,
        "kb/help_article.html",
        {"article": a, "brand": a.brand or Brand.objects.filter(workspace_id=a.workspace_id).first(), "html": html, "related": related, "voted": vote_ is not None, "helped": vote_, "translations": [(t, _language_name(t.language)) for t in translations],
         "canonical": canonical, "alternates": alternates, "description": summary(html), "faq_json_ld": _faq_json_ld(a, html, canonical)},
    )
    return _with_visitor(response, visitor, fresh)


@require_POST
@_help_page
def vote(request: HttpRequest, article_id: int) -> HttpResponse:
    a = _public_article(article_id)
    helpful = request.POST.get("helpful")
    if helpful not in ("yes", "no"):
        return HttpResponseBadRequest(_("helpful must be yes or no"))
    visitor, fresh = _visitor(request)
    if _is_bot(request):
        return HttpResponseBadRequest(_("Votes from automated clients are not counted."))
    counted = actions.do_vote(a, visitor=visitor, helpful=helpful == "yes", comment=request.POST.get("comment", "").strip())
    messages.info(request, _("Thank you for your feedback.") if counted else _("You have already rated this article."))
    return _with_visitor(redirect("kb:public_article", article_id=a.pk), visitor, fresh)



# -- managers --------------------------------------------------------------------------------


@role_required("manager")
def report(request: HttpRequest) -> HttpResponse:
    """What to fix and what to write: weak articles, unanswered searches, FAQ candidates, tips."""
    from madoguchi.kb.models import BrandKbSettings, SocialPost, SocialPosting, SocialPostStatus

    user: User = request.user  # type: ignore[assignment]
    workspace_id = workspace_id_of(user)
    brands = list(Brand.objects.filter(workspace_id=workspace_id).order_by("name"))
    modes = dict(BrandKbSettings.objects.filter(brand__in=brands).values_list("brand_id", "social_posting"))
    return render(
        request,
        "kb/report.html",
        {
            "to_fix": queries.read_a_lot_help_little(workspace_id),
            "stats": queries.article_stats(workspace_id),
            "missed": queries.searches_without_good_result(workspace_id),
            "candidates": queries.faq_candidates(workspace_id),
            "proposed": list(
                SocialPost.objects.filter(workspace_id=workspace_id, status=SocialPostStatus.PROPOSED).select_related("article", "account")[:50]
            ),
            "brands": [(b, modes.get(b.pk, SocialPosting.OFF)) for b in brands],
            "posting_modes": SocialPosting.choices,
        },
    )


@require_POST
@role_required("manager")
def candidate_draft(request: HttpRequest, conversation_id: int) -> HttpResponse:
    """A draft FAQ from the central conversation of an FAQ candidate (anonymized, as Save as FAQ)."""
    return save_as_faq(request, conversation_id)


@require_POST
@role_required("manager")
def social_post_decide(request: HttpRequest, post_id: int) -> HttpResponse:
    from madoguchi.kb.models import SocialPost

    user: User = request.user  # type: ignore[assignment]
    post = SocialPost.objects.filter(pk=post_id, workspace_id=workspace_id_of(user)).first()
    if post is None:
        raise Http404
    try:
        actions.do_decide_social_post(post, approve=request.POST.get("decision") == "approve", actor=user)
        messages.success(request, _("Tip sent to the outbox.") if request.POST.get("decision") == "approve" else _("Tip discarded."))
    except actions.KbError as exc:
        messages.error(request, str(exc))
    return redirect("kb:report")


@require_POST
@role_required("manager")
def social_settings(request: HttpRequest, brand_id: int) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    brand = Brand.objects.filter(pk=brand_id, workspace_id=workspace_id_of(user)).first()
    if brand is None:
        raise Http404
    try:
        actions.do_set_social_posting(brand, request.POST.get("social_posting", ""))
        messages.success(request, _("Saved."))
    except actions.KbError as exc:
        messages.error(request, str(exc))
    return redirect("kb:report")


@role_required("agent")
def diff(request: HttpRequest, article_id: int) -> HttpResponse:
    """Two versions of an article side by side as a line diff (default: the previous and the current)."""
    a = queries.access_article(request.user, article_id)  # type: ignore[arg-type]
    try:
        new_no = int(request.GET.get("to", a.version))
        old_no = int(request.GET.get("from", new_no - 1))
    except ValueError:
        raise Http404 from None
    versions = {v.number: v for v in a.versions.filter(number__in=[old_no, new_no])}
    if new_no not in versions or old_no not in versions:
        raise Http404
    old, new = versions[old_no], versions[new_no]
    return render(
        request,
        "kb/diff.html",
        {
            "article": a, "old": old, "new": new, "may_edit": actions.may_edit(a, request.user),  # type: ignore[arg-type]
            "title_rows": queries.version_diff(old.title, new.title),
            "body_rows": queries.version_diff(old.body, new.body),
        },
    )
