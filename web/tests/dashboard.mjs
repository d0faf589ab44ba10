// End-to-end test of the dashboard in headless Chromium (Debian's package,
// driven by playwright-core). Run by crates/app/tests/browser.rs:
//
//   node web/tests/dashboard.mjs <base-url> <email> <password> <screenshot-dir>
//
// Exits non-zero with a message naming the failed step. Every page it visits
// is photographed at desktop and phone widths into <screenshot-dir>.
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { chromium } from "playwright-core";

const [base, email, password, shots] = process.argv.slice(2);
if (!base || !email || !password || !shots) {
  console.error("usage: dashboard.mjs <base-url> <email> <password> <screenshot-dir>");
  process.exit(2);
}
await mkdir(shots, { recursive: true });

const DESKTOP = { width: 1366, height: 900 };
const PHONE = { width: 390, height: 844 };

function check(condition, message) {
  if (!condition) throw new Error(message);
}

async function shoot(page, name) {
  for (const [label, size] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(size);
    // A sandboxed preview frame paints in its own process, and only once it
    // has been on screen: show it, and give it a moment, before the shot.
    if ((await page.locator("iframe").count()) > 0) {
      await page.locator("iframe").first().scrollIntoViewIfNeeded();
      await page.waitForTimeout(250);
    }
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth);
    check(overflow <= size.width, `${name} is ${overflow}px wide at a ${size.width}px ${label} width`);
    await page.screenshot({ path: join(shots, `${name}-${label}.png`), fullPage: true });
  }
  await page.setViewportSize(DESKTOP);
  console.log(`screenshot: ${name}`);
}

function path(page) {
  const url = new URL(page.url());
  return url.pathname + url.search;
}

const browser = await chromium.launch({
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
});
let step = "start";
let lastPage = null;
try {
  const context = await browser.newContext({ viewport: DESKTOP });
  const page = await context.newPage();
  lastPage = page;
  // TRACE=1 logs every request and navigation, to see why a step waited.
  if (process.env.TRACE) {
    page.on("framenavigated", (f) => console.error(`nav ${f === page.mainFrame() ? "main" : "frame"} ${f.url()}`));
    page.on("requestfailed", (r) => console.error(`requestfailed ${r.url()} ${r.failure()?.errorText}`));
    page.on("request", (r) => console.error(`request ${r.method()} ${r.url()}`));
  }
  page.setDefaultTimeout(15000);
  // Any confirm() (deleting) is accepted; none is expected in this run.
  page.on("dialog", (dialog) => dialog.accept());
  const consoleErrors = [];
  // The wrong password (401) and the forged POST (403) are expected to fail;
  // anything else the console reports is a fault.
  const expected = /status of (401|403)/;
  page.on("console", (msg) => {
    if (msg.type() === "error" && !expected.test(msg.text())) consoleErrors.push(msg.text());
  });
  page.on("pageerror", (err) => consoleErrors.push(String(err)));

  step = "a page without a session redirects to login";
  await page.goto(`${base}/`);
  check(path(page) === "/login", `expected /login, got ${path(page)}`);
  await shoot(page, "login");

  step = "a wrong password is refused in words";
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', "not the right password");
  await Promise.all([page.waitForLoadState("load"), page.click('button[type="submit"]')]);
  check(await page.isVisible("text=do not match an account"), "no error message after a wrong password");
  await shoot(page, "login-error");

  step = "log in and see the overview";
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')]);
  await page.waitForSelector("h1:has-text('Overview')");
  check(await page.isVisible("[data-testid=stat-subscribers]"), "no subscriber count on the overview");
  check(await page.isVisible("text=Messages sent per day"), "no sending chart on the overview");
  check((await page.locator("svg.chart rect.bar").count()) > 0, "no bars in the sending chart");
  await shoot(page, "overview");

  step = "open the lists page from the navigation";
  await Promise.all([page.waitForURL(`${base}/lists`), page.click("nav >> text=Lists")]);
  await page.waitForSelector("h1:has-text('Lists')");

  step = "a form posted without its CSRF token is refused";
  const refused = await page.evaluate(async () => {
    const response = await fetch("/lists", {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: "name=Forged",
    });
    return response.status;
  });
  check(refused === 403, `a POST without a CSRF token got ${refused}, not 403`);

  step = "create a list";
  await page.fill('[data-testid=new-list-form] input[name="name"]', "Spring newsletter");
  await page.fill('[data-testid=new-list-form] textarea[name="description"]', "Seasonal news for customers");
  await page.selectOption('[data-testid=new-list-form] select[name="opt_in"]', "double");
  await page.fill('[data-testid=new-list-form] input[name="tags"]', "news, spring");
  await Promise.all([
    page.waitForURL(`${base}/lists?notice=created`),
    page.click("[data-testid=new-list-form] button[type=submit]"),
  ]);

  step = "see the new list in the table";
  const row = page.locator("[data-testid=lists-table] tbody tr", { hasText: "Spring newsletter" });
  check((await row.count()) === 1, "the new list is not in the table");
  check(await page.isVisible("text=The list was created."), "no confirmation after creating");
  check(!(await page.isVisible("text=Forged")), "the forged POST created a list");
  await shoot(page, "lists");

  step = "delete a list in place with htmx (confirm, CSRF header)";
  await page.fill('[data-testid=new-list-form] input[name="name"]', "Old promotions");
  await Promise.all([
    page.waitForURL(`${base}/lists?notice=created`),
    page.click("[data-testid=new-list-form] button[type=submit]"),
  ]);
  const doomed = page.locator("[data-testid=lists-table] tbody tr", { hasText: "Old promotions" });
  check((await doomed.count()) === 1, "the second list is not in the table");
  await doomed.locator("button:has-text('Delete')").click();
  await doomed.waitFor({ state: "detached" });
  check(path(page) === "/lists?notice=created", "deleting with htmx left the page");
  await page.reload();
  check((await doomed.count()) === 0, "the deleted list is back after a reload");
  check((await row.count()) === 1, "the other list went too");

  step = "open a list's edit page";
  await Promise.all([page.waitForURL(/\/lists\/[0-9a-f-]+\/edit$/), row.locator("text=Edit").click()]);
  check((await page.inputValue('input[name="name"]')) === "Spring newsletter", "the edit form is not filled in");
  await shoot(page, "list-edit");
  await Promise.all([page.waitForURL(`${base}/lists`), page.click("text=Cancel")]);

  // --- subscribers ---
  step = "open the subscribers page from the navigation";
  await Promise.all([page.waitForURL(`${base}/subscribers`), page.click("nav >> text=Subscribers")]);
  const subscriberRows = page.locator("[data-testid=subscribers-table] tbody tr");
  check((await subscriberRows.count()) === 50, `the first page holds ${await subscriberRows.count()} rows, not 50`);
  check(await page.isVisible("[data-testid=page-next]"), "no link to the next page");

  step = "search as you type narrows the table without a page load";
  await page.evaluate(() => {
    window.stillTheSamePage = true;
  });
  await page.fill('[data-testid=subscriber-search] input[name="email"]', "reader123");
  await page.waitForURL(`${base}/subscribers?email=reader123`);
  await page.waitForFunction(
    () => document.querySelectorAll("[data-testid=subscribers-table] tbody tr").length === 11,
  );
  check(await page.evaluate(() => window.stillTheSamePage === true), "searching reloaded the page");
  check(!(await page.isVisible("[data-testid=page-next]")), "eleven matches need no second page");
  await shoot(page, "subscribers");

  step = "open a subscriber";
  await Promise.all([
    page.waitForURL(/\/subscribers\/[0-9a-f-]+$/),
    page.click('[data-testid=subscribers-table] a:has-text("reader1234@example.com")'),
  ]);
  check((await page.textContent("[data-testid=subscriber-status]")).trim() === "enabled", "they are not shown as enabled");
  check(await page.isVisible("[data-testid=memberships] >> text=Customers"), "their list is not shown");
  check(await page.isVisible("[data-testid=deliveries] >> text=Autumn newsletter"), "their deliveries are not shown");
  check(await page.isVisible("[data-testid=bounces] >> text=Mailbox full"), "their bounce is not shown");
  await shoot(page, "subscriber");

  step = "blocklist a subscriber and see the status change";
  await Promise.all([page.waitForURL(/\?notice=blocklisted$/), page.click("[data-testid=blocklist]")]);
  check((await page.textContent("[data-testid=subscriber-status]")).trim() === "blocklisted", "the status did not change");
  check(await page.isVisible("[data-testid=unblocklist]"), "no way to enable them again");
  check(
    (await page.textContent("[data-testid=memberships]")).includes("unsubscribed"),
    "blocklisting did not unsubscribe them",
  );

  step = "add one subscriber by hand";
  await Promise.all([page.waitForURL(`${base}/subscribers`), page.click("nav >> text=Subscribers")]);
  await Promise.all([page.waitForURL(`${base}/subscribers/new`), page.click("[data-testid=new-subscriber]")]);
  await page.fill('[data-testid=new-subscriber-form] input[name="email"]', "ada@example.com");
  await page.fill('[data-testid=new-subscriber-form] input[name="name"]', "Ada Lovelace");
  await page.check('[data-testid=new-subscriber-form] label.check:has-text("Spring newsletter") input');
  await shoot(page, "subscriber-new");
  await Promise.all([page.waitForURL(/\/subscribers\/[0-9a-f-]+\?notice=created$/), page.click("[data-testid=add-subscriber]")]);
  check(await page.isVisible("text=The subscriber was added."), "no confirmation after adding");
  check(await page.isVisible("[data-testid=memberships] >> text=Spring newsletter"), "the new subscriber's list is not shown");

  // --- import ---
  step = "open Import from the navigation";
  await Promise.all([page.waitForURL(`${base}/import`), page.click("nav >> text=Import")]);
  await page.waitForSelector("[data-testid=import-form]");

  step = "upload a CSV with good and bad rows to the Spring newsletter list";
  const { mkdtemp, rm, writeFile } = await import("node:fs/promises");
  const { tmpdir } = await import("node:os");
  const csvRows = ["email,name"];
  for (let i = 1; i <= 20; i++) csvRows.push(`spring${i}@example.com,Spring Reader ${i}`);
  csvRows.push("not-an-address,Broken Row", "someone@@example.com,Double At", ",No Address");
  const csvDir = await mkdtemp(join(tmpdir(), "postino-import-"));
  const csvPath = join(csvDir, "spring-readers.csv");
  await writeFile(csvPath, csvRows.join("\n") + "\n");
  await page.setInputFiles("[data-testid=import-form] input[name=file]", csvPath);
  await page.check('[data-testid=import-form] label.check:has-text("Spring newsletter") input');
  check(await page.isChecked('[data-testid=import-form] input[name=mode][value=subscribe]'), "Add to lists is not the default mode");
  await shoot(page, "import");
  await Promise.all([page.waitForURL(/\/import\/[0-9a-f-]+$/), page.click("[data-testid=start-import]")]);

  step = "watch the progress bar reach the summary";
  await page.waitForSelector("[data-testid=import-summary]", { timeout: 30000 });
  check((await page.textContent("[data-testid=import-status]")).trim() === "finished", "the import did not finish");
  check((await page.textContent("[data-testid=count-created]")).trim() === "20", `created ${await page.textContent("[data-testid=count-created]")}, not 20`);
  check((await page.textContent("[data-testid=count-failed]")).trim() === "3", `failed ${await page.textContent("[data-testid=count-failed]")}, not 3`);

  step = "see the bad rows and download the error report";
  const badRows = page.locator("[data-testid=errors-table] tbody tr");
  check((await badRows.count()) === 3, `${await badRows.count()} bad rows shown, not 3`);
  check(await page.isVisible("[data-testid=errors-table] >> text=not-an-address"), "the invalid address is not named");
  const reportHref = await page.getAttribute("[data-testid=errors-download]", "href");
  const report = await page.evaluate(async (href) => {
    const response = await fetch(href);
    return { status: response.status, text: await response.text() };
  }, reportHref);
  check(report.status === 200, `the error report answered ${report.status}`);
  for (const bad of ["not-an-address", "someone@@example.com", "No Address"]) {
    check(report.text.includes(bad), `the error report does not name ${bad}`);
  }
  await shoot(page, "import-done");
  await rm(csvDir, { recursive: true, force: true });

  step = "the import is listed under the form";
  await Promise.all([page.waitForURL(`${base}/import`), page.click("nav >> text=Import")]);
  const recentRow = page.locator("[data-testid=imports-table] tbody tr", { hasText: "spring-readers.csv" });
  check((await recentRow.count()) === 1, "the import is not in the recent imports");
  await shoot(page, "import-recent");

  step = "open Templates and write one, watching its preview";
  await Promise.all([page.waitForURL(`${base}/templates`), page.click("nav >> text=Templates")]);
  check(await page.isVisible("text=No templates yet"), "no empty state on the templates page");
  await Promise.all([page.waitForURL(`${base}/templates/new`), page.locator("[data-testid=new-template]").first().click()]);
  const layoutPreview = page.frameLocator("[data-testid=preview-frame]");
  await layoutPreview.locator("text=Hello Jane Doe").waitFor();
  await page.fill('[data-testid=template-form] input[name="name"]', "Spring brand");
  await page.fill(
    '[data-testid=template-form] textarea[name="body"]',
    '<html><body style="background:#fef6e4;padding:24px"><h2 style="color:#3553e8">Spring at the Shop</h2>\n' +
      '{{ content }}\n<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p></body></html>',
  );
  await layoutPreview.locator("text=Spring at the Shop").waitFor();
  await shoot(page, "template-editor");
  await Promise.all([page.waitForURL(`${base}/templates?notice=created`), page.click("[data-testid=save-template]")]);
  check(await page.isVisible("[data-testid=templates-table] >> text=Spring brand"), "the new template is not listed");
  await shoot(page, "templates");

  step = "open the campaigns page";
  await Promise.all([page.waitForURL(`${base}/campaigns`), page.click("nav >> text=Campaigns")]);
  await page.waitForSelector("[data-testid=campaigns-table]");
  check(await page.isVisible("text=Weekly digest #48"), "the seeded campaigns are not listed");
  check((await page.locator("[data-testid=campaigns-table] .progress").count()) === 1, "no progress bar for the running campaign");
  await shoot(page, "campaigns");

  step = "write a campaign and watch the preview follow the typing";
  await Promise.all([page.waitForURL(`${base}/campaigns/new`), page.click("[data-testid=new-campaign]")]);
  const subject = page.locator("[data-testid=preview-subject]");
  await page.fill('input[name="name"]', "Spring launch");
  await page.fill('input[name="from_name"]', "The Shop");
  await page.fill('input[name="from_email"]', "news@example.com");
  await page.check('label.check:has-text("Early readers") input');
  await page.fill('input[name="subject"]', "Spring news for {{ subscriber.name }}");
  await subject.filter({ hasText: "Spring news for Jane Doe" }).waitFor();
  await page.fill(
    'textarea[name="body"]',
    '<h1>Big spring sale</h1>\n<p>Hello {{ subscriber.name }}, everything is 20% off this week.</p>\n' +
      '<p><a href="{{ unsubscribe_url }}">Unsubscribe</a></p>',
  );
  const preview = page.frameLocator("[data-testid=preview-frame]");
  await preview.locator("h1", { hasText: "Big spring sale" }).waitFor();

  step = "preview for a chosen subscriber";
  await page.fill('input[name="preview_email"]', "reader1@example.com");
  await subject.filter({ hasText: "Spring news for Reader 1" }).waitFor();
  await preview.locator("text=Hello Reader 1").waitFor();

  step = "a template error is shown next to its field as you type";
  await page.fill('input[name="subject"]', "Spring news for {{ subscriber.name ");
  await page.locator("#error-subject").filter({ hasText: /\S/ }).waitFor();
  await page.fill('input[name="subject"]', "Spring news for {{ subscriber.name }}");
  await subject.filter({ hasText: "Spring news for Reader 1" }).waitFor();
  check((await page.textContent("#error-subject")).trim() === "", "the subject error did not clear once fixed");
  await preview.locator("text=Hello Reader 1").waitFor();
  await shoot(page, "campaign-editor");
  step = "switch the preview to a phone's width";
  await page.click("[data-preview-width=phone]");
  await page.waitForFunction(() => document.querySelector("[data-testid=preview-frame]").clientWidth <= 375);
  await preview.locator("text=Hello Reader 1").waitFor();
  await shoot(page, "campaign-editor-phone-preview");
  await page.click("[data-preview-width=desktop]");

  step = "save the draft";
  await Promise.all([
    page.waitForURL(/\/campaigns\/[0-9a-f-]+\?notice=created$/),
    page.click("[data-testid=save-campaign]"),
  ]);
  check(await page.isVisible("text=saved as a draft"), "no confirmation after saving");

  step = "send a test and see the result inline";
  await page.fill('[data-testid=test-form] input[name="emails"]', "me@example.com");
  await page.click("[data-testid=test-form] button[type=submit]");
  const results = page.locator("[data-testid=test-results]");
  await results.filter({ hasText: "me@example.com" }).waitFor();
  check((await results.textContent()).includes("sent"), `the test was not accepted: ${await results.textContent()}`);

  step = "start the campaign and watch the progress bar reach 100%";
  await Promise.all([page.waitForURL(/\?notice=running$/), page.click("[data-testid=action-running]")]);
  await page.waitForSelector("[data-testid=progress-finished]", { timeout: 60000 });
  const percent = (await page.textContent("[data-testid=progress-percent]")).trim();
  check(percent === "100%", `the progress bar stopped at ${percent}`);
  const delivered = (await page.textContent("[data-testid=count-delivered]")).trim();
  check(delivered === "40", `${delivered} delivered, not 40`);
  await page.goto(page.url().replace(/\?.*$/, ""));
  check((await page.textContent("[data-testid=campaign-status]")).trim() === "finished", "the campaign is not finished");
  await page.frameLocator("[data-testid=preview-frame]").locator("h1").waitFor();
  step = "see the stats: deliveries over time";
  check(await page.isVisible("[data-testid=timeline]"), "no chart of deliveries over time");
  const charted = await page.$$eval("[data-testid=timeline] rect[data-sent]", (bars) =>
    bars.reduce((sum, bar) => sum + Number(bar.dataset.sent), 0),
  );
  check(charted === 40, `the chart shows ${charted} delivered, not 40`);
  await shoot(page, "campaign-finished");

  step = "see each recipient's outcome";
  // Headless Chromium can drop a click on this link that is not preceded by
  // a pointer over it (no navigation follows); a person's click always is.
  await page.hover("[data-testid=see-recipients]");
  await Promise.all([page.waitForURL(/\/deliveries$/), page.click("[data-testid=see-recipients]")]);
  const recipients = await page.locator("[data-testid=deliveries-table] tbody tr").count();
  check(recipients === 40, `${recipients} recipients listed, not 40`);
  await shoot(page, "campaign-recipients");
  await page.goBack();

  // --- settings ---
  step = "an editor has no Settings; sign in as an admin";
  check((await page.locator("nav >> text=Settings").count()) === 0, "an editor sees Settings");
  await page.click(".user-menu summary");
  await Promise.all([page.waitForURL(`${base}/login`), page.click("[data-testid=logout]")]);
  await page.fill('input[name="email"]', "admin@example.com");
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')]);

  step = "open Settings from the navigation: SMTP servers";
  await Promise.all([page.waitForURL(`${base}/settings/smtp`), page.click("nav >> text=Settings")]);
  const smtpRows = page.locator("[data-testid=smtp-table] tbody.server");
  check((await smtpRows.count()) >= 1, "the seeded SMTP server is not listed");

  step = "test the seeded SMTP server's connection (the sink)";
  const seeded = smtpRows.first();
  await seeded.locator("[data-testid=smtp-test]").click();
  const outcome = seeded.locator("[data-testid=smtp-test-result]");
  await outcome.waitFor();
  check((await outcome.textContent()).includes("Connected"), `the test failed: ${await outcome.textContent()}`);
  await shoot(page, "settings-smtp");

  step = "add an SMTP server pointing at the sink and test it";
  const sinkAddress = (await seeded.locator("td[data-label=Address] code").textContent()).trim();
  const [sinkHost, sinkPort] = sinkAddress.split(":");
  await page.fill('[data-testid=new-smtp-form] input[name="name"]', "Local sink");
  await page.fill('[data-testid=new-smtp-form] input[name="host"]', sinkHost);
  await page.fill('[data-testid=new-smtp-form] input[name="port"]', sinkPort);
  await page.selectOption('[data-testid=new-smtp-form] select[name="tls"]', "none");
  await page.fill('[data-testid=new-smtp-form] input[name="username"]', "mailer");
  await page.fill('[data-testid=new-smtp-form] input[name="password"]', "relay-secret-123");
  await Promise.all([
    page.waitForURL(`${base}/settings/smtp?notice=created`),
    page.click("[data-testid=new-smtp-form] button[type=submit]"),
  ]);
  check(!(await page.content()).includes("relay-secret-123"), "the relay password is in the page");
  const added = page.locator("[data-testid=smtp-table] tbody.server", { hasText: "Local sink" });
  await added.locator("[data-testid=smtp-test]").click();
  const addedOutcome = added.locator("[data-testid=smtp-test-result]");
  await addedOutcome.waitFor();
  check((await addedOutcome.textContent()).includes("authenticated"), `the new server did not authenticate: ${await addedOutcome.textContent()}`);

  step = "generate an ed25519 DKIM key and see its DNS record";
  await Promise.all([page.waitForURL(`${base}/settings/dkim`), page.click("[data-testid=settings-tabs] >> text=DKIM keys")]);
  await page.fill('[data-testid=new-dkim-form] input[name="domain"]', "example.com");
  await page.fill('[data-testid=new-dkim-form] input[name="selector"]', "postino1");
  await page.selectOption('[data-testid=new-dkim-form] select[name="algorithm"]', "ed25519-sha256");
  await Promise.all([page.waitForURL(`${base}/settings/dkim?notice=created`), page.click("[data-testid=dkim-create]")]);
  const record = page.locator("[data-testid=dkim-record]").first();
  check((await record.textContent()).includes("postino1._domainkey.example.com"), "no DNS record name");
  check((await record.textContent()).includes("v=DKIM1; k=ed25519; p="), "no DNS record value");
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const copy = record.locator("button:has-text('Copy')").last();
  await copy.click();
  await record.locator("button", { hasText: /Copied|Selected/ }).waitFor();
  const copied = await page.evaluate(() => navigator.clipboard.readText());
  check(copied.startsWith("v=DKIM1; k=ed25519; p="), `the clipboard holds ${copied}`);
  await shoot(page, "settings-dkim");

  step = "sending limits: set the overall rate";
  await Promise.all([page.waitForURL(`${base}/settings/limits`), page.click("[data-testid=settings-tabs] >> text=Sending limits")]);
  await page.fill('[data-testid=rate-form] input[name="messages_per_second"]', "25");
  await Promise.all([page.waitForURL(`${base}/settings/limits?notice=rate`), page.click("[data-testid=rate-form] button[type=submit] >> nth=0")]);
  check((await page.inputValue('[data-testid=rate-form] input[name="messages_per_second"]')) === "25", "the rate was not kept");
  check(await page.isVisible("[data-testid=throttles-table] >> text=outlook.com"), "the seeded throttle is not shown");
  await shoot(page, "settings-limits");

  step = "API tokens: the secret is shown once";
  await Promise.all([page.waitForURL(`${base}/settings/tokens`), page.click("[data-testid=settings-tabs] >> text=API tokens")]);
  await page.fill('[data-testid=new-token-form] input[name="name"]', "Shop sign-ups");
  await Promise.all([page.waitForLoadState("load"), page.click("[data-testid=new-token-form] button[type=submit]")]);
  const secret = (await page.textContent("[data-testid=token-secret]")).trim();
  check(secret.startsWith("pst_"), `no token secret: ${secret}`);
  await shoot(page, "settings-tokens");
  await page.goto(`${base}/settings/tokens`);
  check(!(await page.content()).includes(secret), "the token secret is shown again");
  const tokenRow = page.locator("[data-testid=tokens-table] tbody tr", { hasText: "Shop sign-ups" });
  check((await tokenRow.locator("[data-testid=token-scope]").textContent()).trim() === "admin", "the token's scope is not shown");
  check((await tokenRow.locator("[data-testid=token-owner]").textContent()).includes("@"), "the token's owner is not shown");

  step = "users and roles";
  await Promise.all([page.waitForURL(`${base}/settings/users`), page.click("[data-testid=settings-tabs] >> text=Users")]);
  check(await page.isVisible("[data-testid=users-table] >> text=marketer@example.com"), "the editor is not listed");
  await shoot(page, "settings-users");
  await Promise.all([
    page.waitForURL(/\/settings\/users\/[0-9a-f-]+\/edit$/),
    page.locator("[data-testid=users-table] tr", { hasText: "marketer@example.com" }).locator("text=Manage").click(),
  ]);
  check((await page.inputValue('select[name="role"]')) === "editor", "the user's role is not preselected");
  await shoot(page, "settings-user-edit");

  step = "sign in as the editor again";
  await page.click(".user-menu summary");
  await Promise.all([page.waitForURL(`${base}/login`), page.click("[data-testid=logout]")]);
  await page.fill('input[name="email"]', email);
  await page.fill('input[name="password"]', password);
  await Promise.all([page.waitForURL(`${base}/`), page.click('button[type="submit"]')]);

  step = "log out";
  await page.click(".user-menu summary");
  await Promise.all([page.waitForURL(`${base}/login`), page.click("[data-testid=logout]")]);

  step = "after logging out, pages redirect to login";
  await page.goto(`${base}/lists`);
  check(path(page) === "/login?next=%2Flists", `expected the login page, got ${path(page)}`);

  step = "the API reference renders under the Content-Security-Policy";
  const docs = await page.goto(`${base}/api/docs/`);
  check((docs.headers()["content-security-policy"] || "").includes("script-src 'self'"), "no CSP on the API reference");
  await page.waitForSelector(".swagger-ui .info .title:has-text('Postino API')");
  check((await page.locator(".swagger-ui .opblock").count()) > 10, "the API reference lists no operations");
  await shoot(page, "api-docs");

  check(consoleErrors.length === 0, `errors in the browser console: ${consoleErrors.join(" | ")}`);
  await context.close();
  console.log("dashboard browser test passed");
} catch (error) {
  console.error(`FAILED at step "${step}": ${error.message}`);
  if (lastPage) {
    console.error(`the page was ${lastPage.url()}`);
    await lastPage.screenshot({ path: join(shots, "failure.png"), fullPage: true }).catch(() => {});
  }
  process.exitCode = 1;
} finally {
  await browser.close();
}
