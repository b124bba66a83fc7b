# frozen_string_literal: true

require "test_helper"
require "json"
require "zlib"
require "tmpdir"
require "securerandom"
require "stringio"
require_relative "../support/file_capture"

# redact: :strings: no string's contents leave the process, in either mode (dump, stored summary,
# result, log); equal strings keep one digest; heapy, sheap and `heapcapture report` read the dump.
class RedactionTest < HCTest::TestCase
  DIGEST = /\Aredacted:\h{32}\z/

  include HCTest::FileCapture

  def setup
    @log = StringIO.new
    use_file_destination(logger: Logger.new(@log))
    # Made at run time: no literal of it is in this file, so a match can only be the live strings.
    @secret = "pw-#{SecureRandom.hex(8)}"
    @kept = Array.new(1000) { String.new(@secret) } # 1000 equal strings
  end

  def teardown
    @kept = nil
    remove_file_destination
  end

  def test_fork_mode_gzip_leaves_no_trace_of_the_secret_and_sheap_reads_it
    result = HeapCapture.capture(mode: :fork, compression: :gzip, redact: :strings)
    lines = check_redacted(result)
    require "sheap"
    strings = Sheap::Heap.new(result["location"]).filter { |o| o["type"] == "STRING" }
    assert_operator strings.length, :>=, 1000
    assert(strings.all? { |o| o["value"].nil? || o["value"].match?(DIGEST) })
    report = HeapCapture::Summary.of_file(result["location"])
    assert_equal lines.length, report["lines"]
    dups = report["duplicate_strings"]
    assert(dups.all? { |d| d["value"].match?(DIGEST) }, "report's duplicate strings are digests")
    assert(dups.any? { |d| d["count"] >= 1000 }, "the 1000 copies' shared digest among them: #{dups.first(3)}")
  end

  def test_inline_mode_plain_leaves_no_trace_of_the_secret_and_heapy_reads_it
    result = HeapCapture.capture(mode: :inline, compression: :none, redact: :strings)
    check_redacted(result)
    require "heapy"
    out, = capture_io { Heapy::Analyzer.new(result["location"]).analyze }
    assert_match(/Generation:/, out)
    refute_includes out, @secret
  end

  def test_without_redaction_the_secret_is_there_which_is_what_the_test_above_rules_out
    result = HeapCapture.capture(mode: :fork, compression: :none)
    assert_equal "ok", result["status"], result["error"]
    assert_nil result["redacted"]
    assert_includes File.binread(result["location"]), @secret
  end

  def test_two_captures_use_two_keys
    digests = 2.times.map do
      result = HeapCapture.capture(mode: :fork, compression: :none, redact: :strings)
      secret_digest(dump_lines(result["location"]))
    end
    refute_equal digests[0], digests[1]
  end

  def test_bad_setting_is_a_clear_error
    error = assert_raises(HeapCapture::ConfigurationError) { HeapCapture.capture(redact: :everything) }
    assert_match(/redact must be one of none, strings, got :everything/, error.message)
    error = assert_raises(HeapCapture::ConfigurationError) do
      HeapCapture::Configuration.new("HEAPCAPTURE_REDACT" => "yes")
    end
    assert_match(/HEAPCAPTURE_REDACT must be one of none, strings/, error.message)
    assert_equal :strings, HeapCapture::Configuration.new("HEAPCAPTURE_REDACT" => "Strings").redact
  end

  private

  def dump_lines(path)
    data = File.binread(path)
    data = Zlib.gunzip(data) if path.end_with?(".gz")
    data.force_encoding(Encoding::UTF_8).lines
  end

  def secret_digest(lines)
    values = lines.filter_map do |line|
      record = JSON.parse(line)
      record["value"] if record["type"] == "STRING" && record["bytesize"] == @secret.bytesize
    end
    # The 1000 copies (and the one the test keeps) share a digest: the most common value of their size.
    digest, count = values.tally.max_by { |_, n| n }
    assert_operator count, :>=, 1000, "1000 equal strings share one digest"
    digest
  end

  def check_redacted(result)
    assert_equal "ok", result["status"], result["error"]
    assert_equal "strings", result["redacted"]
    lines = dump_lines(result["location"])
    assert_operator lines.length, :>, 1000
    refute(lines.any? { |line| line.include?(@secret) }, "the secret is in the dump")
    refute(lines.any? { |line| line.include?(@secret.delete_prefix("pw-")) }, "part of the secret is in the dump")
    records = lines.map { |line| JSON.parse(line) } # every line stays JSON
    strings = records.select { |r| r["type"] == "STRING" }
    bad = strings.reject do |r|
      (!r.key?("value") || r["value"].match?(DIGEST)) && (r.key?("bytesize") || r["shared"]) && r.key?("memsize")
    end
    assert_empty bad.first(3), "strings whose value is not a digest, or that lost their bytesize or memsize"
    assert_operator strings.length, :>=, 1000
    assert_match DIGEST, secret_digest(lines)
    summary = File.join(@dest, HeapCapture::Summary.key_for(File.basename(result["location"])))
    assert_equal "strings", JSON.parse(File.read(summary))["redacted"], "the stored summary says so"
    refute_includes File.binread(summary), @secret
    refute_includes JSON.generate(result), @secret
    refute_includes @log.string, @secret
    lines
  end
end
