# frozen_string_literal: true

require "test_helper"
require_relative "../support/heap_graph_reference"
require "json"
require "minitest/mock"
require "open3"
require "tmpdir"
require_relative "../support/dump_parse"
require_relative "../support/file_capture"

# The summary every capture makes once its dump is stored (from the tempfile, the fork child gone):
# it equals a full parse of the stored dump, in both modes, with or without the retention analysis;
# it is stored beside the dump; the result carries its top, and the reply keeps as many sites as
# fit in a notification; signal --wait prints the top 3 under the result line;
# `heapcapture report KEY --stored` reads the stored summary (no duplicate strings: without --stored
# the dump is read and has them).
class CaptureSummaryTest < HCTest::TestCase
  include HCTest::FileCapture

  def setup = use_file_destination

  def teardown
    ObjectSpace.trace_object_allocations_stop
    remove_file_destination
  end

  %i[fork inline].each do |mode|
    define_method("test_#{mode}_mode_summary_equals_a_full_parse_of_the_stored_dump") do
      check_summary(mode)
    end
  end

  def test_the_reply_keeps_the_top_sites_that_fit
    sites = Array.new(100) do |i|
      { "file" => "/app/#{'deeply/nested/' * 8}file_#{i}.rb", "line" => i, "objects" => 1000 - i, "memsize" => 100_000 - i }
    end
    result = { "status" => "ok", "url" => "https://bucket.s3.amazonaws.com/#{'x' * 900}", "payload" => "why",
               "summary" => { "objects" => 5, "memsize" => 6, "site_count" => 100, "types" => {}, "sites" => sites } }
    json = HeapCapture::Wire.reply_json(result)
    assert_operator json.bytesize, :<=, HeapCapture::Wire::PAYLOAD_MAX
    kept = JSON.parse(json)["summary"]["sites"]
    assert_operator kept.size, :>, 10
    assert_operator kept.size, :<, 100
    assert_equal sites.first(kept.size), kept, "the top ones, in order"
    assert_equal "https://bucket.s3.amazonaws.com/#{'x' * 900}", JSON.parse(json)["url"], "nothing else was cut"
  end

  def test_signal_wait_prints_the_heap_and_the_top_three_sites_under_the_result
    sites = [["app/models/user.rb", 12, 4000, 12_897_345], ["app/jobs/a.rb", 3, 20, 2048], ["lib/x.rb", 9, 1, 40],
             ["lib/y.rb", 1, 1, 40]].map { |f, l, o, m| { "file" => f, "line" => l, "objects" => o, "memsize" => m } }
    result = { "status" => "ok", "dyno" => "web.1", "pid" => 42, "location" => "s3://b/k", "bytes" => 10,
               "summary" => { "objects" => 1_234_567, "memsize" => 412 * 1024 * 1024, "sites" => sites } }
    assert_equal ["  heap: 1,234,567 objects, 412.0 MiB memsize",
                  "  top site: 12.3 MiB in 4,000 objects at app/models/user.rb:12",
                  "  top site: 2.0 KiB in 20 objects at app/jobs/a.rb:3",
                  "  top site: 40 bytes in 1 object at lib/x.rb:9",
                  "  (a tally: garbage awaiting GC counted in; `heapcapture report KEY` tells what is held, by whom)"],
                 HeapCapture::ResultText.top_sites(result)
    assert_equal [], HeapCapture::ResultText.top_sites(result.merge("summary" => nil))
  end

  # A site the sampled tracer saw: its figures are estimates (scaled by the sampling weight), with the
  # objects seen; exact sites stay as they were.
  def test_signal_wait_prints_a_sampled_site_as_an_estimate
    sites = [{ "file" => "app/leak.rb", "line" => 3, "objects" => 204_000, "memsize" => 12_897_345,
               "retained_objects" => 204_000, "retained_memsize" => 12_897_345, "garbage_objects" => 0, "garbage_memsize" => 0,
               "estimated" => true, "sampled" => 40 },
             { "file" => "app/b.rb", "line" => 7, "objects" => 10_200, "memsize" => 408_000, "retained_objects" => 5100,
               "retained_memsize" => 204_000, "garbage_objects" => 5100, "garbage_memsize" => 204_000, "estimated" => true,
               "sampled" => 2 },
             { "file" => "app/c.rb", "line" => 9, "objects" => 1, "memsize" => 40, "retained_objects" => 1,
               "retained_memsize" => 40, "garbage_objects" => 0, "garbage_memsize" => 0 }]
    suspect = { "kind" => "site", "address" => "0x7f01", "instances" => 204_000, "type" => "OBJECT", "class" => "Leak",
                "file" => "app/leak.rb", "line" => 3, "retained_memsize" => 12_897_345, "retained_objects" => 408_000,
                "share" => 0.5, "estimated" => true, "sampled" => 40, "path" => [], "path_length" => 2 }
    summary = { "objects" => 300_000, "memsize" => 40 * 1024 * 1024, "sites" => sites, "retention" => "computed",
                "retained" => { "objects" => 250_000, "memsize" => 30 * 1024 * 1024 },
                "garbage" => { "objects" => 50_000, "memsize" => 10 * 1024 * 1024 }, "suspects" => [suspect] }
    lines = HeapCapture::ResultText.top_sites({ "status" => "ok", "summary" => summary })
    assert_equal ["  top site: ~12.3 MiB retained in ~204,000 objects (40 sampled) at app/leak.rb:3",
                  "  top site: ~199.2 KiB retained in ~5,100 objects (2 sampled; ~199.2 KiB awaiting GC) at app/b.rb:7",
                  "  top site: 40 bytes retained in 1 object at app/c.rb:9"], lines[1, 3]
    assert_equal "  suspect: ~204,000 objects (40 sampled) allocated at app/leak.rb:3 retain ~12.3 MiB (~50.0%) in " \
                 "~408,000 objects (the largest: OBJECT (Leak) 0x7f01 at app/leak.rb:3)", lines[5]
  end

  # When the memory guard says the retention analysis does not fit, the summary is the tally, read
  # back from the tempfile once the dump is stored (a fork capture's child makes none), and says why
  # it has no analysis.
  def test_a_fork_capture_without_room_for_the_analysis_has_the_tally_and_says_why
    GC.start
    kept = Array.new(2000) { |i| "kept without the analysis #{i}" }
    why = "it needs ~9 GB, 10 MB are free of the 1 GB limit (memory_limit setting, this process's RSS)"
    result = HeapCapture::MemoryGuard.stub(:retention_fits, [false, why]) { HeapCapture.capture(mode: :fork) }
    assert_equal "ok", result["status"], result["error"]
    summary = result["summary"]
    want = HCTest::DumpParse.tallies(result["location"])
    assert_equal want.values_at("objects", "memsize"), summary.values_at("objects", "memsize")
    assert_equal want["types"], tally_of(summary["types"])
    assert_equal "not computed at capture time: #{why}; heapcapture report KEY computes it from the dump",
                 summary["retention"]
    assert_nil summary["retained"]
    assert_empty Dir.children(@tmpdir), "no tempfile left"
    assert_equal 2000, kept.size
  end

  private

  def check_summary(mode)
    GC.start
    ObjectSpace.trace_object_allocations_start
    line = __LINE__ + 1
    kept = Array.new(3000) { |i| "kept by the summary test #{i}" }
    result = HeapCapture.capture(mode: mode)
    ObjectSpace.trace_object_allocations_stop
    assert_equal "ok", result["status"], result["error"]
    assert_equal mode.to_s, result["mode"]

    want = HCTest::DumpParse.tallies(result["location"])
    summary = result["summary"]
    assert_equal want.values_at("objects", "memsize"), summary.values_at("objects", "memsize")
    assert_equal want["types"], tally_of(summary["types"])
    assert_equal want["sites"].size, summary["site_count"]
    assert_sites(want, summary["sites"], HeapCapture::Summary::TOP)
    assert(summary["sites"].any? { |s| s["file"] == __FILE__ && s["line"] == line && s["retained_objects"] >= 3000 },
           "the kept strings' site is among the top: #{summary['sites'].first(3)}")
    check_retention(result, summary)

    stored_path = File.join(@dest, HeapCapture::Summary.key_for(File.basename(result["location"])))
    assert File.file?(stored_path), "stored beside the dump"
    assert_equal 0o600, File.stat(stored_path).mode & 0o777
    stored = JSON.parse(File.read(stored_path, encoding: "UTF-8"))
    %w[lines objects memsize roots invalid_lines generations].each { |k| assert_equal want[k], stored[k], k }
    assert_equal want["types"], tally_of(stored["types"])
    assert_sites(want, stored["sites"], HeapCapture::Summary::STORED_SITES)
    assert_equal summary.values_at("retained", "garbage"), stored.values_at("retained", "garbage")
    assert_equal want["references"], stored["references"]
    refute stored.key?("duplicate_strings"), "no string tally in the capture (its memory is the app's to keep)"
    holders = want["holders"].sort_by { |address, refs, memsize| [-refs, -memsize, Integer(address)] }
    assert_equal holders.first(HeapCapture::Summary::STORED_SITES),
                 stored["most_references"].map { |h| h.values_at("address", "references", "memsize") }
    assert_equal result["raw_bytes"], stored["raw_bytes"]
    assert_empty Dir.children(@tmpdir), "no tempfile left"
    check_report_of_key(File.basename(result["location"]), kept.size)
    kept.clear
  end

  def tally_of(types) = types.transform_values { |t| t.slice("objects", "memsize") }

  # The sites by retained memsize (the retention analysis ran at capture time): each one's objects
  # and memsize as the parse has them, at most count of them, in order; heapcapture's own (its lib/
  # files, and sites all of whose objects only it holds) left out.
  def assert_sites(want, sites, count)
    assert_operator sites.size, :<=, count
    assert_operator sites.size, :>, 0
    sites.each { |s| assert_equal want["sites"][[s["file"], s["line"]]], s.values_at("objects", "memsize"), s }
    refute(sites.any? { |s| s["file"].include?("/lib/heapcapture/") }, "heapcapture's own sites are kept out")
    assert_equal sites.sort_by { |s| [-s["retained_memsize"], -s["memsize"]] }.map { |s| s["retained_memsize"] },
                 sites.map { |s| s["retained_memsize"] }
  end

  # At capture time, in a process of its own once the dump is stored: retained and awaiting GC as a
  # plain Ruby BFS over the stored dump has them, with that process's peak RSS. The dump is this
  # test process's, whose heap is what the tests run before left it: past REFERENCE_MAX objects the
  # Ruby reference (every line parsed, dominators in Ruby) takes minutes and GBs, and the figures
  # are compared with report's reading of the stored dump instead (the reference checks those on
  # dumps of known retention: test/report/retention_test.rb).
  REFERENCE_MAX = 300_000

  def check_retention(result, summary)
    assert_equal "computed", summary["retention"], summary["retention"]
    assert_operator summary["retention_ms"], :>, 0
    reference = if summary["objects"] <= REFERENCE_MAX
                  HeapGraphReference.new(result["location"])
                else
                  Struct.new(:retained, :garbage, :own)
                        .new(*HeapCapture::Summary.of_file(result["location"], strings: false)
                                                  .values_at("retained", "garbage", "own"))
                end
    assert_equal reference.retained, summary["retained"]
    assert_equal reference.garbage, summary["garbage"]
    assert_equal reference.own, summary["own"]
    assert_kind_of Array, summary["suspects"]
    assert_operator summary["retention_peak_bytes"], :>, 0
    # Net of what the app frees meanwhile (a GC, malloc giving pages back), it can be 0: seen in a
    # Ruby 3.3 leg. Its figure is checked against an outside measurement in extra_memory_test.
    assert_operator result["extra_memory_bytes"], :>=, 0
    # The inline dump's IO (with its buffer) is in the heap it dumps: heapcapture's own, no retainer.
    assert_operator summary["own"]["objects"], :>, 0
    refute(summary["suspects"].any? { |s| %w[IO HeapCapture::Dump::PipeIO].include?(s["class"]) },
           "the capture's own IO is no suspect: #{summary['suspects'].map { |s| s.except('path') }}")
  end

  # report KEY --stored: the stored summary (its retention analysis made at capture time), saying it
  # has no duplicate strings; report KEY reads the dump.
  def check_report_of_key(key, kept)
    out, err, status = heapcapture("report", key, "--stored", "--top", HeapCapture::Summary::STORED_SITES.to_s)
    assert status.success?, err
    assert_match(/^file:.* \(its stored summary\): /, out)
    assert_match(/^duplicate strings: not in a stored summary .*drop --stored/, out)
    assert_match(/^  retained \(reachable from a root\): [\d,]+ objects/, out, "the capture's retention analysis is stored")
    assert_match(/^ +#{HeapCapture::Size.count(kept)} .* ARRAY \(Array\) 0x\h+ at #{Regexp.escape(__FILE__)}:/, out,
                 "the kept array among the holders")
    json, err, status = heapcapture("report", key, "--json")
    assert status.success?, err
    assert_kind_of Array, JSON.parse(json)["duplicate_strings"], "read from the dump"
    assert_equal "computed", JSON.parse(json)["retention"], "read from the dump"
  end

  def heapcapture(*args)
    env = { "HEAPCAPTURE_DESTINATION" => "file://#{@dest}", "HEAPCAPTURE_TMPDIR" => @tmpdir }
    Open3.capture3(env, RbConfig.ruby, "-I#{File.expand_path('../../lib', __dir__)}",
                   File.expand_path("../../exe/heapcapture", __dir__), *args)
  end
end
