# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "tmpdir"
require "zlib"
require_relative "../support/file_capture"
require_relative "../support/heap_graph_reference"

# report_html: a capture stores its report as a page beside the dump (KEY.report.html), off by
# default. The page's data is the stored summary's with the dominator tree's frames (which the
# stored summary and the result do not carry); its retained and awaiting-GC figures are what the
# Ruby reference computes from the stored dump. With encrypt_to the page is an age file
# (KEY.report.html.age) that age decrypts, as the summary is. The page in a browser is
# report_page_test's.
class CapturePageTest < HCTest::TestCase
  include HCTest::FileCapture

  def setup
    use_file_destination
    @keys = Dir.mktmpdir("hc-page-keys-")
  end

  def teardown
    remove_file_destination
    FileUtils.rm_rf(@keys)
  end

  def page_path(location)
    File.join(@dest, HeapCapture::Summary.key_for(File.basename(location), HeapCapture::ReportPage::SUFFIX))
  end

  # The JSON a page draws (its #heap-data element). The page is UTF-8 whatever the locale (CI sets none).
  def page_data(html)
    html = html.dup.force_encoding(Encoding::UTF_8)
    JSON.parse(html[%r{<script type="application/json" id="heap-data">(.*?)</script>}m, 1])
  end

  def test_off_by_default
    result = HeapCapture.capture(mode: :fork)
    assert_equal "ok", result["status"], result["error"]
    refute File.exist?(page_path(result["location"])), "no page unless report_html"
  end

  def test_a_capture_stores_its_page_beside_the_dump
    kept = Array.new(2000) { |i| "kept for the page #{i}" }
    result = HeapCapture.capture(mode: :fork, report_html: true)
    assert_equal "ok", result["status"], result["error"]
    page = page_path(result["location"])
    assert File.file?(page), "#{page} beside the dump: #{Dir.children(@dest)}"
    data = page_data(File.read(page))
    assert_equal "report", data["kind"]
    assert_equal File.basename(result["location"]), data["name"]
    stored = JSON.parse(File.read(File.join(@dest, HeapCapture::Summary.key_for(File.basename(result["location"]))),
                                  encoding: Encoding::UTF_8))
    assert_nil stored["tree"], "the tree is the page's only"
    assert_nil result["summary"]["tree"]
    assert_equal stored.values_at("objects", "memsize", "retained", "garbage"),
                 data.values_at("objects", "memsize", "retained", "garbage")
    plain = File.join(@tmpdir, "dump.ndjson")
    File.binwrite(plain, Zlib.gunzip(File.binread(result["location"])))
    ref = HeapGraphReference.new(plain)
    assert_equal [ref.retained, ref.garbage], data.values_at("retained", "garbage"), "as the reference has them"
    assert_operator data.dig("tree", "value"), :>, 0, "the dominator tree's frames"
    assert_equal 2000, kept.size
  end

  def test_an_encrypted_capture_stores_an_age_file_of_its_page
    key = File.join(@keys, "one.txt")
    _, err, status = Open3.capture3("age-keygen", "-o", key)
    assert status.success?, err
    result = HeapCapture.capture(mode: :inline, report_html: true, encrypt_to: err[/age1[a-z0-9]+/])
    assert_equal "ok", result["status"], result["error"]
    sealed_path = page_path(result["location"])
    assert sealed_path.end_with?(".report.html.age"), sealed_path
    refute File.exist?(sealed_path.delete_suffix(".age")), "nothing in the clear"
    sealed = File.binread(sealed_path)
    assert sealed.start_with?("age-encryption.org/v1\n"), "an age file"
    html, err, status = Open3.capture3("age", "-d", "-i", key, stdin_data: sealed, binmode: true)
    assert status.success?, err
    data = page_data(html)
    assert_equal result["summary"]["objects"], data["objects"]
    assert_match(/\Askipped: the dump is encrypted/, data["retention"], "the page says why there is no analysis")
  end
end
