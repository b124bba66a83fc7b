# frozen_string_literal: true

require_relative "test_helper"
require_relative "support/page_helpers"
require_relative "support/heap_graph_reference"

# `heapcapture diff OLD NEW LATER --html FILE`, opened in a real browser (headless Chromium,
# nothing reachable off the machine: test/support/chromium.rb). The dumps:
# test/fixtures/retention/growth.rb, a cache (an Array in a constant) that gains records between
# the dumps while buffers are made and dropped. The page must load with no console message and no
# request but its own; its totals are the growth's, retained and awaiting GC, as the Ruby
# reference computes them from the three dumps; the top site of the growth is the records' line;
# what holds the growth is the cache, with the path `diff --json` gives. The screenshot goes to
# tmp/test-output/diff-page.png. Bad input: a diff that cannot be made gives a page that says why.
class DiffPageTest < HCTest::TestCase
  include HCTest::PageHelpers

  def make_dumps
    paths = %w[old new later].map { |n| File.join(@dir, "#{n}.ndjson") }
    [paths, run_fixture("growth", *paths)]
  end

  # The growth as the reference computes it: objects in NEW whose address OLD lacks, still in
  # LATER; retained when a root of LATER reaches them.
  def growth_reference(old, new, later)
    before = HeapGraphReference.new(old)
    made = HeapGraphReference.new(new)
    ref = HeapGraphReference.new(later)
    tallies = { "retained" => [0, 0], "awaiting GC" => [0, 0] }
    ref.each_record do |r|
      next if before.include?(r.address) || !made.include?(r.address)

      t = tallies[ref.reachable?(r.address) ? "retained" : "awaiting GC"]
      t[0] += 1
      t[1] += r.memsize
    end
    tallies
  end

  def test_the_diff_page_in_a_browser
    dumps, facts = make_dumps
    page = File.join(@dir, "diff.html")
    out, err, status = heapcapture("diff", *dumps, "--html", page, "--json")
    assert status.success?, err
    diff = JSON.parse(out)
    assert_equal facts["cache"], diff.dig("holder", "address"), "diff --json: the cache holds the growth"
    assert_operator File.size(page), :<, 3_000_000

    HCTest::Chromium.open do |browser|
      browser.visit("file://#{page}")
      browser.wait_for("document.getElementById('growth-holder') !== null")
      assert_empty browser.console_messages, "no console message at all"
      assert_equal ["file://#{page}"], browser.requests.map { |r| r[:url] }, "no request but the page's own"
      browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "diff-page.png"))

      assert_totals_as_the_reference(browser, growth_reference(*dumps))
      top_site = browser.evaluate("document.querySelector('#growth-sites tbody tr td').textContent")
      assert_equal "#{facts['file']}:#{facts['record_line']}", top_site, "the records' line grew most"
      assert_holder(browser, diff["holder"])
    end
  end

  def assert_totals_as_the_reference(browser, want)
    text = browser.evaluate("document.getElementById('growth').textContent")
    want.each do |what, (objects, memsize)|
      grouped = objects.to_s.reverse.scan(/\d{1,3}/).join(",").reverse
      assert_includes text, "#{HeapCapture::Size.human(memsize)}#{what}", "#{what}'s memsize in #{text[0, 400]}"
      assert_includes text, "(#{grouped} objects)", "#{what}: #{objects} objects"
    end
  end

  # The holder's box: the cache, the growth it holds, and the chain of hops `diff --json` gives.
  def assert_holder(browser, holder)
    box = browser.evaluate("document.querySelector('#growth-holder h3').textContent")
    assert_includes box, holder["address"]
    assert_includes box, "holds #{HeapCapture::Size.human(holder['growth_memsize'])} of the growth"
    hops = browser.evaluate("Array.prototype.map.call(document.querySelectorAll('#growth-holder .hop'), " \
                            "function (h) { return h.textContent; })")
    assert_equal holder["path"].size, hops.size, "the path's hops: #{hops}"
    holder["path"].zip(hops).each { |hop, text| assert_includes text, hop["address"] || "ROOT #{hop['root']}" }
  end

  def test_a_diff_that_cannot_be_made_says_so_on_the_page
    old = File.join(@dir, "old.ndjson")
    File.write(old, %({"address":"0x1", "type":"STRING", "memsize":40}\n))
    empty = File.join(@dir, "empty.ndjson")
    File.write(empty, "")
    page = File.join(@dir, "diff.html")
    _, err, status = heapcapture("diff", old, empty, "--html", page)
    assert_equal 1, status.exitstatus
    assert_match(/is empty: there is no heap dump in it/, err)
    HCTest::Chromium.open do |browser|
      browser.visit("file://#{page}")
      assert_match(/is empty: there is no heap dump in it/, browser.evaluate("document.getElementById('problem').textContent"))
      assert_includes browser.evaluate("document.querySelector('h1').textContent"), "What grew"
      assert_empty browser.console_messages
    end
  end
end
