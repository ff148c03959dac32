"""The top bar on a phone: a menu button opens the sections as a panel, by keyboard or by touch."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from .conftest import DESKTOP, PHONE

pytestmark = pytest.mark.browser


def focused_text(page: Page) -> str:
    return page.evaluate("document.activeElement.textContent.trim()")


def test_on_a_phone_the_keyboard_opens_the_menu_follows_a_section_and_escape_closes_it(open_page):
    page = open_page("contacts/", viewport=PHONE)
    button = page.locator(".topbar .menu-toggle")
    menu = page.locator("#main-menu")
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(menu.get_by_role("link", name="Settings")).to_be_hidden()

    page.keyboard.press("Tab")  # the brand
    page.keyboard.press("Tab")
    expect(button).to_be_focused()
    page.keyboard.press("Enter")
    expect(button).to_have_attribute("aria-expanded", "true")
    expect(menu).to_be_visible()
    expect(menu.get_by_role("link", name="Inbox")).to_be_focused()  # focus moved into the panel
    expect(menu.locator("[aria-current=page]")).to_have_text("Contacts")

    page.keyboard.press("Escape")
    expect(menu).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")
    expect(button).to_be_focused()  # back where the agent was

    page.keyboard.press("Space")
    expect(menu).to_be_visible()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowDown")
    assert focused_text(page) == "Knowledge base"
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/kb/"))

    # The new page starts closed and marks its own section; Escape closes it there too.
    expect(page.locator("#main-menu")).to_be_hidden()
    page.locator(".topbar .menu-toggle").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#main-menu [aria-current=page]")).to_have_text("Knowledge base")
    page.keyboard.press("Escape")
    expect(page.locator("#main-menu")).to_be_hidden()
    expect(page).to_have_url(re.compile(r"/kb/"))


def test_a_tap_outside_closes_the_menu_and_escape_in_a_conversation_only_closes_the_menu(open_page, server):
    conv = server.customer_writes("Where is my parcel?", name="Menu Tester")
    page = open_page(f"inbox/c/{conv}/", viewport=PHONE, has_touch=True)
    button = page.locator(".topbar .menu-toggle")
    button.tap()
    expect(page.locator("#main-menu")).to_be_visible()
    page.locator("#thread").tap()
    expect(page.locator("#main-menu")).to_be_hidden()
    expect(button).to_have_attribute("aria-expanded", "false")

    # In a conversation Escape also means "back to the list" (a handler on the document): with the
    # menu open it only closes the menu and goes no further.
    button.tap()
    page.evaluate("document.addEventListener('keydown', (e) => sessionStorage.setItem('escapeWentOn', e.key))")
    page.keyboard.press("Escape")
    expect(page.locator("#main-menu")).to_be_hidden()
    assert page.evaluate("sessionStorage.getItem('escapeWentOn')") is None
    expect(page).to_have_url(re.compile(rf"/inbox/c/{conv}/$"))


def test_on_a_desktop_the_sections_stay_in_the_bar(open_page):
    page = open_page("contacts/", viewport=DESKTOP)
    expect(page.locator(".topbar .menu-toggle")).to_be_hidden()
    expect(page.locator("#main-menu").get_by_role("link", name="Settings")).to_be_visible()
    expect(page.locator("#main-menu [aria-current=page]")).to_have_text("Contacts")
