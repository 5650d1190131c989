#!/usr/bin/env python3
"""Drive mailroot's web admin page in a real headless Chromium (Selenium + chromedriver).

Used by tests/e2e_admin_page.rs, which starts the real server (smart host on a dead port,
so relayed mail stays queued; home.test is a local domain, so NDRs land in Drop/).

Steps (each waits with a bound, never asserts on speed):
  1. load the page, read the "Messages received" counter;
  2. enter the admin token; send a message with smtplib; see the counter move;
  3. sites: click Pause on the first site, see it paused and a new SMTP connection
     turned away with 421, then Resume; click Stop (twice: it arms first), see it
     stopped and a new SMTP connection refused by the kernel, then Start and see it
     greet again (skipped with a reason when the server has no /api/sites);
  4. hold a queued message from the page (it shows as held), open its details, delete it
     (two clicks: the button arms first) and see it gone;
  5. bounce another one from the page and see the NDR arrive in Drop/;
  6. a hostile sender ("<img src=x onerror=...>"@home.test) is shown as text: no element
     is created from it and its handler never runs;
  7. the configuration panel shows the token masked;
  8. screenshot.

Prints one JSON object with what it saw; exits non-zero (with the reason on stderr) on
any failure.
"""

import argparse
import glob
import json
import os
import smtplib
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By

WAIT_S = 30.0
STEP_S = 0.1


def wait_for(what, fn, limit=WAIT_S):
    """Poll fn() until it returns something truthy; fail with `what` after `limit` s."""
    deadline = time.monotonic() + limit
    last_err = None
    while time.monotonic() < deadline:
        try:
            v = fn()
            if v:
                return v
        except Exception as e:  # stale elements while the page re-renders
            last_err = e
        time.sleep(STEP_S)
    raise AssertionError("timed out waiting for %s (last error: %r)" % (what, last_err))


def send(port, sender, rcpt, subject):
    body = ("From: <%s>\r\nTo: <%s>\r\nSubject: %s\r\n\r\nHello from the admin page test.\r\n"
            % ("page@home.test", rcpt, subject))
    with smtplib.SMTP("127.0.0.1", port, timeout=20) as s:
        s.ehlo("browser.test")
        s.sendmail(sender, [rcpt], body.encode())


def counter(driver, cid):
    text = driver.find_element(By.ID, cid).text.replace(",", "")
    return int(text) if text.isdigit() else None


def row_for(driver, rcpt):
    """The queue row whose recipients cell holds rcpt (None if absent)."""
    for row in driver.find_elements(By.CSS_SELECTOR, "tr.msg"):
        if rcpt in row.find_element(By.CSS_SELECTOR, "td.rcpts").text:
            return row
    return None


def state_of(driver, qid):
    rows = driver.find_elements(By.CSS_SELECTOR, 'tr.msg[data-id="%s"]' % qid)
    if not rows:
        return None
    return rows[0].find_element(By.CSS_SELECTOR, "span.state").get_attribute("data-state")


def click_action(driver, qid, action, twice=False):
    sel = 'button[data-action="%s"][data-id="%s"]' % (action, qid)
    wait_for("%s button of %s" % (action, qid), lambda: driver.find_elements(By.CSS_SELECTOR, sel))
    driver.find_element(By.CSS_SELECTOR, sel).click()
    if twice:
        wait_for("%s armed" % action,
                 lambda: "armed" in driver.find_element(By.CSS_SELECTOR, sel).get_attribute("class"))
        driver.find_element(By.CSS_SELECTOR, sel).click()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--smtp-port", type=int, required=True)
    ap.add_argument("--token", required=True)
    ap.add_argument("--drop-dir", required=True)
    ap.add_argument("--screenshot", required=True)
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    ap.add_argument("--chromedriver", default="/usr/bin/chromedriver")
    a = ap.parse_args()
    out = {}

    opts = Options()
    opts.binary_location = a.chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1400,1000", "--force-device-scale-factor=1"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(a.chromedriver), options=opts)
    try:
        # 1. The page loads and shows the counters.
        driver.get(a.url)
        assert "mailroot" in driver.title, driver.title
        before = wait_for("the received counter", lambda: counter(driver, "ctr-received") is not None
                          and counter(driver, "ctr-received") + 1)
        before -= 1
        out["received_before"] = before

        # 2. Token, then a message: the counter moves (the page polls every 2 s).
        driver.find_element(By.ID, "token").send_keys(a.token)
        driver.find_element(By.ID, "token-save").click()
        wait_for("token state", lambda: "token set" in driver.find_element(By.ID, "token-state").text)
        send(a.smtp_port, "bob@home.test", "held@dead-one.test", "to hold")
        after = wait_for("the counter to move",
                         lambda: (counter(driver, "ctr-received") or 0) > before
                         and counter(driver, "ctr-received"))
        out["received_after"] = after

        # 3. Sites: pause and resume from the page.
        sites = driver.find_elements(By.CSS_SELECTOR, "tr.site")
        if not sites:
            time.sleep(6)  # one site refresh period
            sites = driver.find_elements(By.CSS_SELECTOR, "tr.site")
        if sites:
            name = sites[0].get_attribute("data-site")
            site_button = 'tr.site[data-site="%s"] button[data-action="%s"]'
            sel = site_button % (name, "pause")
            driver.find_element(By.CSS_SELECTOR, sel).click()
            wait_for("site paused", lambda: driver.find_element(
                By.CSS_SELECTOR, 'tr.site[data-site="%s"] span.state' % name)
                .get_attribute("data-state") == "paused")
            out["site_paused"] = name
            # Paused: a new SMTP connection is turned away with 421 (IIS semantics).
            try:
                with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20) as s:
                    code = s.noop()[0]
            except smtplib.SMTPConnectError as e:
                code = e.smtp_code
            except smtplib.SMTPServerDisconnected:
                code = "disconnected"
            out["paused_greeting"] = code
            wait_for("the resume button", lambda: driver.find_elements(
                By.CSS_SELECTOR, site_button % (name, "resume")))
            driver.find_element(By.CSS_SELECTOR, site_button % (name, "resume")).click()
            wait_for("site running", lambda: driver.find_element(
                By.CSS_SELECTOR, 'tr.site[data-site="%s"] span.state' % name)
                .get_attribute("data-state") == "running")
            out["site_resumed"] = name
            # Stop (two clicks): the listeners close, a new connection is refused.
            stop = site_button % (name, "stop")
            wait_for("the stop button", lambda: driver.find_elements(By.CSS_SELECTOR, stop))
            driver.find_element(By.CSS_SELECTOR, stop).click()
            wait_for("stop armed", lambda: "armed" in
                     driver.find_element(By.CSS_SELECTOR, stop).get_attribute("class"))
            driver.find_element(By.CSS_SELECTOR, stop).click()
            wait_for("site stopped", lambda: driver.find_element(
                By.CSS_SELECTOR, 'tr.site[data-site="%s"] span.state' % name)
                .get_attribute("data-state") == "stopped")
            try:
                with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20) as s:
                    out["stopped_connect"] = s.noop()[0]
            except ConnectionRefusedError:
                out["stopped_connect"] = "refused"
            start = site_button % (name, "start")
            wait_for("the start button", lambda: driver.find_elements(By.CSS_SELECTOR, start))
            driver.find_element(By.CSS_SELECTOR, start).click()
            wait_for("site running again", lambda: driver.find_element(
                By.CSS_SELECTOR, 'tr.site[data-site="%s"] span.state' % name)
                .get_attribute("data-state") == "running")
            with smtplib.SMTP("127.0.0.1", a.smtp_port, timeout=20) as s:
                out["started_noop"] = s.noop()[0]
            out["site_started"] = name
        else:
            out["sites"] = driver.find_element(By.ID, "sites-note").text

        # 4. Hold the queued message, look at its details, delete it.
        row = wait_for("the queued message", lambda: row_for(driver, "held@dead-one.test"))
        qid = row.get_attribute("data-id")
        wait_for("a first delivery attempt", lambda: state_of(driver, qid) == "deferred")
        click_action(driver, qid, "hold")
        wait_for("held", lambda: state_of(driver, qid) == "held")
        out["held"] = qid
        driver.find_element(By.CSS_SELECTOR, 'tr.msg[data-id="%s"] td.id' % qid).click()
        detail = wait_for("details", lambda: [d for d in driver.find_elements(
            By.CSS_SELECTOR, 'tr.detail[data-id="%s"]' % qid) if "Envelope" in d.text])
        dtext = detail[0].text
        for want in ("held@dead-one.test", "bob@home.test", "browser.test", "yes, since"):
            assert want in dtext, "details lack %r: %s" % (want, dtext)
        click_action(driver, qid, "delete", twice=True)
        wait_for("deleted row gone", lambda: state_of(driver, qid) is None)
        out["deleted"] = qid

        # 5. Bounce: a real NDR arrives in Drop/ for the local sender.
        send(a.smtp_port, "alice@home.test", "gone@dead-two.test", "to bounce")
        row = wait_for("the second message", lambda: row_for(driver, "gone@dead-two.test"))
        qid2 = row.get_attribute("data-id")
        wait_for("a first delivery attempt", lambda: state_of(driver, qid2) == "deferred")
        before_drop = set(glob.glob(os.path.join(a.drop_dir, "*.eml")))
        click_action(driver, qid2, "bounce", twice=True)
        wait_for("bounced row gone", lambda: state_of(driver, qid2) is None)

        def ndr():
            for f in set(glob.glob(os.path.join(a.drop_dir, "*.eml"))) - before_drop:
                text = open(f, encoding="utf-8", errors="replace").read()
                if "gone@dead-two.test" in text and "x-receiver: alice@home.test" in text:
                    return f
            return None
        out["bounced"] = qid2
        out["ndr_file"] = wait_for("the NDR in Drop/", ndr)
        status = driver.find_element(By.ID, "status").text
        assert "NDR to alice@home.test" in status, status

        # 6. A hostile envelope is shown as text, never as markup.
        evil = "\"<img src=x onerror=document.title='pwned'>\"@home.test"
        send(a.smtp_port, evil, "evil@dead-three.test", "hostile")
        row = wait_for("the hostile message", lambda: row_for(driver, "evil@dead-three.test"))
        qid3 = row.get_attribute("data-id")
        sender = row.find_element(By.CSS_SELECTOR, "td.sender").text
        assert "<img src=x onerror=" in sender, sender
        driver.find_element(By.CSS_SELECTOR, 'tr.msg[data-id="%s"] td.id' % qid3).click()
        wait_for("hostile details", lambda: [d for d in driver.find_elements(
            By.CSS_SELECTOR, 'tr.detail[data-id="%s"]' % qid3) if "<img src=x" in d.text])
        imgs = driver.execute_script("return document.querySelectorAll('img').length")
        assert imgs == 0, "markup from the envelope became %d element(s)" % imgs
        assert driver.title != "pwned", "script from the envelope ran"
        out["hostile_shown_as_text"] = sender

        # The event log panel shows the actions taken from the page.
        wait_for("queue.delete in the event panel", lambda: driver.find_elements(
            By.CSS_SELECTOR, 'tr.event[data-event="queue.delete"]'), limit=15)
        out["events_panel"] = True

        # 7. Configuration: the token is masked.
        cfg = wait_for("config panel", lambda: driver.find_elements(
            By.CSS_SELECTOR, '.cfg[data-section="[admin]"]'))
        ctext = cfg[0].text
        assert "********" in ctext and a.token not in ctext, ctext
        assert a.token not in driver.find_element(By.TAG_NAME, "body").text
        out["config_masked"] = True

        # 8. Screenshot of the whole page (the window grown to its height).
        wait_for("counters updated", lambda: "updated" in driver.find_element(By.ID, "updated").text)
        height = driver.execute_script("return document.documentElement.scrollHeight")
        driver.set_window_size(1400, max(1000, min(int(height) + 40, 4000)))
        time.sleep(0.3)
        os.makedirs(os.path.dirname(os.path.abspath(a.screenshot)), exist_ok=True)
        driver.save_screenshot(a.screenshot)
        out["screenshot"] = a.screenshot
    finally:
        driver.quit()
    print(json.dumps(out))


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("admin page check failed: %s" % e, file=sys.stderr)
        sys.exit(1)
