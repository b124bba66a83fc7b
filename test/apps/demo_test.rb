# frozen_string_literal: true

require "test_helper"
require "rbconfig"
require "timeout"
require_relative "../support/chromium"

# bin/demo end to end, as a user runs it: its own services, puma with two workers, the CLI, one
# dump's allocation sites. Bounded; the demo stops everything it started.
class DemoTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  TIMEOUT = 180
  INT_GRACE = 30

  def test_bin_demo_shows_two_workers_ok_results_and_the_apps_leak_at_the_top_of_the_sites
    out, status = run_demo
    assert status.success?, "bin/demo failed (#{status.inspect}):\n#{out}"

    oks = out.scan(%r{^\s+web\.1 pid (\d+): ok s3://heapcapture-test/demo/\S+-web\.1-pid\1-heap\.ndjson\.gz \d+ bytes http\S+ (.*)$}) # rubocop:disable Layout/LineLength
    assert_equal 2, oks.map(&:first).uniq.size, "two workers' ok results:\n#{out}"
    oks.each do |_pid, timings|
      assert_match(/\A\(app paused \d+(\.\d)? ms, dump \d+(\.\d)? ms, stored \d+(\.\d)? ms later\) tracing full \(a 3 s window\)\z/, # rubocop:disable Layout/LineLength
                   timings, "each result says how long the app was stopped, and that it traced every allocation for 3 s")
    end

    table = out[/top 10 allocation sites.*?\n(.*?)==> /m, 1] or flunk("no allocation-sites table:\n#{out}")
    rows = table.lines.drop(1).map(&:split)
    assert_equal 10, rows.size, table
    assert(rows.all? { |count, memsize, _site| count.to_i.positive? && memsize.match?(/\A\d+\z/) }, table)
    leak = File.readlines(File.join(ROOT, "examples/demo/config.ru")).index { |l| l.include?("record = ") } + 1
    assert_equal "examples/demo/config.ru:#{leak}", rows.first[2], "the app's leak holds the most objects made in the window"
    assert_suspects_name_the_leak(out, leak)
    assert_pages_show_the_leak(out, leak)
    assert_match(/heapcapture: armed in web\.1 .* allocation tracing sampled/, out, "armed with the default tracing")
    refute_match(/FAILED/, out)
  end

  private

  # Each dump's retention analysis names the leak: a suspect at the record's line, held through
  # DemoCatalog (its SEEN array), the path from a root printed under it. Records made before the
  # window that the sampled tracer saw make the suspect an estimate ("~11,525 objects (2 sampled)").
  def assert_suspects_name_the_leak(out, leak)
    sections = out.split(/^==> what holds the memory in /).drop(1)
    assert_equal 2, sections.size, "the retention analysis of each dump:\n#{out}"
    sections.each do |section|
      assert_match(/^  retained \(reachable from a root\): [\d,]+ objects/, section)
      head = /^    suspect: ~?[\d,]+ objects (\([\d,]+ sampled\) )?allocated at \S*config\.ru:#{leak} retain /
      suspect = section[/#{head}.*?(?=^    suspect:|^==>|\z)/m]
      refute_nil suspect, "a suspect names the leak's site (config.ru:#{leak}):\n#{section}"
      path = /^      ROOT \w+\n(.*\n)*      MODULE DemoCatalog .*\n(.*\n)*      HASH \(Hash\) 0x\h+ at \S*config\.ru:#{leak} /
      assert_match(path, suspect, "its path from a root goes through DemoCatalog to one of the records")
    end
  end

  # Each dump's page (tmp/demo/*.html), in a browser: it loads with no console message and no request
  # but its own, and its icicle has a frame at the leak's site. The first page's screenshot is
  # tmp/test-output/demo-report-page.png (doc/report-page.png, in README, is one of them).
  def assert_pages_show_the_leak(out, leak)
    pages = out.scan(/^    page: (\S+\.html) /).flatten
    assert_equal 2, pages.size, "a page for each dump:\n#{out}"
    HCTest::Chromium.open do |browser|
      pages.each_with_index do |page, i|
        browser.visit("file://#{page}")
        browser.wait_for("document.querySelectorAll('#icicle g').length > 0")
        assert_empty browser.console_messages, page
        sites = browser.evaluate("Array.prototype.map.call(document.querySelectorAll('#icicle g'), " \
                                 "function (g) { return g.__data__ ? g.__data__.data.file + ':' + g.__data__.data.line : ''; })")
        assert(sites.any? { |s| s.end_with?("config.ru:#{leak}") }, "a frame at config.ru:#{leak} in #{page}")
        browser.screenshot(File.join(HCTest::Chromium::OUTPUT_DIR, "demo-report-page.png")) if i.zero?
      end
      assert_equal(pages.map { |p| "file://#{p}" }, browser.requests.map { |r| r[:url] }, "no request but the pages")
    end
  end

  # bin/demo in a process group of its own. If it overruns: Ctrl-C (INT) to the group, so that it
  # stops the services it started, then KILL if it does not finish within INT_GRACE seconds.
  def run_demo
    reader, writer = IO.pipe
    # As on a fresh machine or in a Docker image: no locale (puma's log holds a "✔").
    no_locale = { "LANG" => nil, "LC_ALL" => nil, "LC_CTYPE" => nil, "LANGUAGE" => nil }
    pid = Process.spawn(no_locale, File.join(ROOT, "bin/demo"), out: writer, err: writer, pgroup: true, chdir: ROOT)
    writer.close
    output = Thread.new { reader.read }
    status = begin
      Timeout.timeout(TIMEOUT) { Process.waitpid2(pid).last }
    rescue Timeout::Error
      Process.kill("INT", -pid)
      begin
        Timeout.timeout(INT_GRACE) { Process.waitpid2(pid).last }
      rescue Timeout::Error
        Process.kill("KILL", -pid)
        Process.waitpid2(pid).last
      end
    end
    [output.value, status]
  ensure
    reader&.close
  end
end
