# frozen_string_literal: true

require_relative "../test_helper"
require_relative "../support/page_helpers"
require_relative "../support/heap_graph_reference"

# `heapcapture diff OLD NEW LATER --html FILE`, opened in a real browser (headless Chromium,
# nothing reachable off the machine: test/support/chromium.rb). The dumps:
# test/fixtures/retention/growth.rb, a cache (an Array in a constant) that gains records between
# the dumps while buffers are made and dropped. The page must load with no console message and no
# request but its own; its totals and each type's bar are the growth's, retained and awaiting GC,
# as the Ruby reference computes them from the three dumps; the top site of the growth is the
# records' line; what holds the growth is the cache, with the path `diff --json` gives, holding
# the new objects the reference says it dominates along a path as short as the reference's. The
# screenshot goes to tmp/test-output/diff-page.png. Bad input: a diff that cannot be made gives a
# page that says why.
class DiffPageTest < HCTest::TestCase
  include HCTest::PageHelpers

  def make_dumps
    paths = %w[old new later].map { |n| File.join(@dir, "#{n}.ndjson") }
    [paths, run_fixture("growth", *paths)]
  end

  # The growth as the reference computes it: objects in NEW whose address OLD lacks, still in
  # LATER; retained when a root of LATER reaches them. => the reference (LATER's), the totals
  # ("retained", "awaiting GC": [objects, memsize]), [retained, awaiting GC] memsize by type, and the
  # retained new objects' addresses.
  def growth_reference(old, new, later)
    before = HeapGraphReference.new(old)
    made = HeapGraphReference.new(new)
    ref = HeapGraphReference.new(later)
    totals = { "retained" => [0, 0], "awaiting GC" => [0, 0] }
    types = Hash.new { |h, k| h[k] = [0, 0] }
    held = []
    ref.each_record do |r|
      next if before.include?(r.address) || !made.include?(r.address)

      reached = ref.reachable?(r.address)
      held << r.address if reached
      t = totals[reached ? "retained" : "awaiting GC"]
      t[0] += 1
      t[1] += r.memsize
      types[r.type][reached ? 0 : 1] += r.memsize
    end
    { ref: ref, totals: totals, types: types, held: held }
  end

  def test_the_diff_page_in_a_browser
    dumps, facts = make_dumps
    page = File.join(@dir, "diff.html")
    out, err, status = heapcapture("diff", *dumps, "--html", page, "--json")
    assert status.success?, err
    diff = JSON.parse(out)
    assert_equal facts["cache"], diff.dig("holder", "address"), "diff --json: the cache holds the growth"
    assert_operator File.size(page), :<, 3_000_000
    refute_includes File.read(page, encoding: "UTF-8"), HeapCapture::ReportPage.asset("vendor/flamegraph.js"),
                    "no drawing library: no icicle"

    HCTest::Chromium.open do |browser|
      browser.visit("file://#{page}")
      browser.wait_for("document.getElementById('growth-holder') !== null")
      assert_empty browser.console_messages, "no console message at all"
      assert_equal ["file://#{page}"], browser.requests.map { |r| r[:url] }, "no request but the page's own"
      browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "diff-page.png"))

      want = growth_reference(*dumps)
      assert_totals_as_the_reference(browser, want[:totals])
      assert_type_bars_as_the_reference(browser, want[:types])
      top_site = browser.evaluate("document.querySelector('#growth-sites tbody tr td').textContent")
      assert_equal "#{facts['file']}:#{facts['record_line']}", top_site, "the records' line grew most"
      assert_holder(browser, diff["holder"])
      assert_holder_as_the_reference(browser, diff["holder"], want)
    end
  end

  # The new objects, retained and awaiting GC, as the page's figures at the top say them.
  def assert_totals_as_the_reference(browser, want)
    text = browser.evaluate("document.getElementById('growth').textContent")
    want.each do |what, (objects, memsize)|
      assert_includes text, "#{HeapCapture::Size.human(memsize)}#{what}", "#{what}'s memsize in #{text[0, 400]}"
      assert_includes text, "(#{HeapCapture::Size.count(objects)} objects)", "#{what}: #{objects} objects"
    end
    objects, memsize = want.values.transpose.map(&:sum)
    assert_includes text, "#{HeapCapture::Size.count(objects)}new objects (#{HeapCapture::Size.human(memsize)})",
                    "all of the growth"
  end

  # Each type's bar note: what of the type's new objects a root reaches, and what awaits GC.
  def assert_type_bars_as_the_reference(browser, types)
    notes = browser.evaluate(<<~JS).each_slice(3).to_h { |label, _bar, note| [label, note] }
      Array.prototype.map.call(document.querySelectorAll("#growth .bars > *"),
        function (e) { return e.textContent; })
    JS
    assert_operator types.size, :<=, 8, "every type has a row of its own"
    types.each do |type, (held, garbage)|
      want = "#{HeapCapture::Size.human(held)} retained"
      want += ", #{HeapCapture::Size.human(garbage)} awaiting GC" if garbage.positive?
      assert_equal want, notes[type], "#{type}'s bar"
    end
  end

  # The holder's growth is the new objects it dominates; its path, a shortest one: as long as the
  # reference's, each hop a reference the dump has.
  def assert_holder_as_the_reference(browser, holder, want)
    ref = want[:ref]
    address = holder["address"]
    dominated = want[:held].select { |a| ref.dominates?(address, a) }
    memsize = dominated.sum { |a| ref.record(a).memsize }
    box = browser.evaluate("document.getElementById('growth-holder').textContent")
    assert_includes box, "holds #{HeapCapture::Size.human(memsize)} of the growth", "what the reference says it dominates"
    assert_includes box, "#{HeapCapture::Size.count(dominated.size)} new objects"
    hops = holder["path"].drop(1).map { |hop| hop["address"] }
    assert_equal ref.path_length(address), hops.size, "a shortest path"
    assert ref.root_edge?(holder["path"].first["root"], hops.first), "the root's reference to #{hops.first}"
    hops.each_cons(2) { |from, to| assert ref.edge?(from, to), "#{from} references #{to}" }
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
