# frozen_string_literal: true

require_relative "../test_helper"
require "tmpdir"
require_relative "../support/chromium"

# The headless browser the HTML report's tests drive (test/support/chromium.rb), on small pages
# written here: what it records (console messages, exceptions, every request, and that a request
# off the machine fails), clicks, typed text and screenshots. No Chromium is a failure naming
# bin/setup, never a skip.
class ChromiumClientTest < HCTest::TestCase
  def setup
    @dir = Dir.mktmpdir("hc-chromium-test-")
  end

  def teardown
    FileUtils.rm_rf(@dir)
  end

  def page(name, body)
    path = File.join(@dir, name)
    File.write(path, <<~HTML)
      <!DOCTYPE html>
      <html lang="en"><head><meta charset="utf-8"><title>#{name}</title></head>
      <body>#{body}</body></html>
    HTML
    "file://#{path}"
  end

  def test_a_clean_page_gives_no_console_message_and_no_request_but_its_own
    url = page("clean.html", <<~HTML)
      <p id="out"></p>
      <script>document.getElementById("out").textContent = [1, 2, 3].map((n) => n * 2).join(",");</script>
    HTML
    HCTest::Chromium.open do |browser|
      load_time = browser.visit(url)
      assert_operator load_time, :<, 10
      assert_equal "2,4,6", browser.evaluate(%(document.getElementById("out").textContent))
      assert_empty browser.console_messages
      assert_equal [[url, 200, false]], browser.requests.map { |r| r.values_at(:url, :status, :failed) }
    end
  end

  def test_console_messages_exceptions_and_failed_requests_are_recorded
    names = "http://example.invalid/a.png"
    loopback = "http://127.0.0.1:9/b.png"
    url = page("noisy.html", <<~HTML)
      <script>console.log("x");</script>
      <img src="#{names}" alt=""><img src="#{loopback}" alt="">
      <script>notDefinedAnywhere();</script>
    HTML
    HCTest::Chromium.open do |browser|
      browser.visit(url)
      HCTest::Services.wait_until("both images' requests to fail", timeout: 5) do
        browser.requests.count { |r| [names, loopback].include?(r[:url]) && r[:failed] } == 2
      end
      requests = browser.requests
      assert_equal [url, names, loopback], requests.map { |r| r[:url] }
      assert(requests.drop(1).all? { |r| r[:failed] && r[:error].start_with?("net::ERR_") }, requests.inspect)

      messages = browser.console_messages
      assert_includes messages, { source: "console-api", level: "log", text: "x", url: url }
      assert(messages.any? { |m| m[:source] == "exception" && m[:text].include?("notDefinedAnywhere is not defined") },
             messages.inspect)
      [names, loopback].each do |failed|
        assert(messages.any? { |m| m[:source] == "network" && m[:level] == "error" && m[:url] == failed }, messages.inspect)
      end
    end
  end

  def test_a_click_and_typed_text_reach_the_page
    url = page("form.html", <<~HTML)
      <button id="go" style="position: absolute; left: 300px; top: 200px; width: 120px; height: 40px"
              onclick="this.textContent = 'clicked'">press</button>
      <input id="search" oninput="document.title = 'typed ' + this.value">
    HTML
    HCTest::Chromium.open do |browser|
      browser.visit(url)
      browser.click_at(10, 10) # beside the button: nothing happens
      assert_equal "press", browser.evaluate(%(document.getElementById("go").textContent))
      browser.click("#go")
      assert_equal "clicked", browser.wait_for(%(document.getElementById("go").textContent === "clicked" && "clicked"))

      browser.click("#search")
      browser.insert_text("heap ü")
      assert_equal "heap ü", browser.evaluate(%(document.getElementById("search").value))
      assert_equal "typed heap ü", browser.evaluate("document.title")
      assert_empty browser.console_messages
    end
  end

  def test_a_screenshot_is_a_png_of_the_viewport
    url = page("shot.html", %(<h1 style="font-family: sans-serif">heapcapture</h1>))
    path = File.join(HCTest::Chromium::OUTPUT_DIR, "chromium_client", "screenshot.png")
    FileUtils.rm_f(path)
    HCTest::Chromium.open do |browser|
      browser.visit(url)
      assert_equal path, browser.screenshot(path)
    end
    png = File.binread(path)
    assert_equal "\x89PNG\r\n\x1A\n".b, png[0, 8], "PNG signature"
    assert_equal "IHDR", png[12, 4], "the first chunk"
    assert_equal [HCTest::Chromium::WIDTH, HCTest::Chromium::HEIGHT], png[16, 8].unpack("NN"), "width and height"
  end

  def test_a_javascript_error_and_a_wait_that_times_out_raise
    HCTest::Chromium.open do |browser|
      browser.visit(page("empty.html", ""))
      error = assert_raises(HCTest::Chromium::Error) { browser.evaluate("nope()") }
      assert_match(/ReferenceError: nope is not defined/, error.message)
      assert_equal 3, browser.evaluate("Promise.resolve(1 + 2)")
      error = assert_raises(HCTest::Chromium::Error) { browser.wait_for("false", timeout: 0.3) }
      assert_match(/timed out after 0.3s/, error.message)
      error = assert_raises(HCTest::Chromium::Error) { browser.visit("file://#{@dir}/missing.html") }
      assert_match(/ERR_FILE_NOT_FOUND/, error.message)
    end
  end
end
