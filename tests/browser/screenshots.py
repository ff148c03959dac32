"""Take the README's screenshots of the inbox: .venv/bin/python tests/browser/screenshots.py [DIR]

Starts madoguchi on a throwaway data dir, lets demo traffic in (Japanese and English customers
on several channels), answers one conversation, and photographs it on a desktop and a phone.
With --all it also photographs the login, contacts and settings pages (for reviewing the UI).
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from browser.harness import AGENT, launch, log_in, running_server  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent.parent


def main(out: Path, everything: bool = False) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with running_server() as server, sync_playwright() as pw:
        server.call("traffic", count=14, seed=7)
        name = "佐藤 ゆい"
        conv = server.customer_writes(
            "注文した商品がまだ届きません。注文番号は A-20931 です。いつ頃届きますか？",
            name=name, handle="sato_yui", language="ja", thread="line-sato",
        )
        server.call("reply", conversation=conv, email="agent2@demo.example",
                    text="お問い合わせありがとうございます。A-20931 は本日発送済みで、明日の午前中にお届け予定です。")
        server.customer_writes("ありがとうございます！ 明日は午後しか家にいないのですが、時間指定できますか？",
                               name=name, handle="sato_yui", language="ja", thread="line-sato")
        server.customer_writes("Hi, the app keeps logging me out since the last update (v4.2 on Android). Any fix?",
                               name="Noah Davis", handle="noah_d", account="x", language="en")
        browser = launch(pw)

        desktop = browser.new_context(viewport={"width": 1440, "height": 900})
        page = log_in(desktop, server, AGENT)
        page.goto(f"{server.url}inbox/c/{conv}/")
        expect(page.locator("#live-dot.on")).to_be_visible()
        page.wait_for_timeout(300)
        page.screenshot(path=out / "inbox-desktop.png")
        if everything:
            page.goto(server.url + "inbox/")
            page.screenshot(path=out / "inbox-desktop-list.png")
            page.keyboard.press("?")
            page.screenshot(path=out / "inbox-desktop-help.png")
            page.goto(server.url + "contacts/")
            page.screenshot(path=out / "contacts.png", full_page=True)
            page.locator("a[href*='/contacts/']").filter(has_text=name).first.click()
            page.screenshot(path=out / "contact.png", full_page=True)
            page.goto(server.url + "settings/")
            page.screenshot(path=out / "settings.png", full_page=True)
        desktop.close()

        phone = browser.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True, device_scale_factor=2)
        page = log_in(phone, server, AGENT)
        expect(page.locator("#live-dot.on")).to_be_visible()
        page.screenshot(path=out / "inbox-phone.png")
        if everything:
            page.goto(f"{server.url}inbox/c/{conv}/")
            page.screenshot(path=out / "inbox-phone-conversation.png")
            page.goto(server.url + "contacts/")
            page.screenshot(path=out / "contacts-phone.png")
            anon = browser.new_context(viewport={"width": 390, "height": 844})
            login = anon.new_page()
            login.goto(server.url + "login/")
            login.screenshot(path=out / "login-phone.png")
            anon.close()
        phone.close()
        anon = browser.new_context(viewport={"width": 1440, "height": 900})
        login = anon.new_page()
        login.goto(server.url + "login/")
        if everything:
            login.screenshot(path=out / "login.png")
        browser.close()


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--all"]
    main(Path(args[0]) if args else ROOT / "docs" / "screenshots", everything="--all" in sys.argv)
