# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "tmpdir"
require_relative "../support/dump_parse"

# heapcapture's sampled tracer: a process that lets objects pile up (a leak) beside other work
# gets a fraction of them (never none) annotated with exactly their true site, no object gets a
# wrong one, and every other byte of the dump is dump_all's. Each case runs in a process of its own
# (test/support/sampled_leak.rb): the tracer is process-wide.
class SampledTracingTest < HCTest::TestCase
  SCRIPT = File.expand_path("../support/sampled_leak.rb", __dir__)
  LIB = File.expand_path("../../lib", __dir__)

  def run_leak(*args)
    out, err, status = Open3.capture3(RbConfig.ruby, "-I#{LIB}", SCRIPT, *args)
    assert status.success?, "#{args.join(' ')} failed:\n#{err}"
    JSON.parse(out.lines.last)
  end

  def assert_true_sites(found, what)
    assert_equal [], found["wrong"], "#{what}: no object carries a site that is not its own"
    assert_operator found["strings"], :>, 0, "#{what}: some of the 100,000 leaked strings carry their site"
    assert_operator found["objects"], :>, 0, "#{what}: some of the 100,000 leaked objects carry their site"
    assert_operator found["strings"], :<, 100_000, "#{what}: a sample, not every string"
    assert found["generations"], "#{what}: every site has its generation"
  end

  def test_a_fork_mode_capture_carries_the_sampled_sites
    Dir.mktmpdir("hc-sampled-") do |dir|
      found = run_leak("capture", dir)
      assert_equal "ok", found["status"], found["error"]
      assert_match(/\Asampled \(1 in ~\d+ allocations\)\z/, found["tracing"])
      assert_true_sites(found, "capture")
      # The samples are looked up in the tracer's WeakMap: no exception for a dead one (ObjectSpace._id2ref,
      # which the tracer once used, left 693 RangeErrors in this dump).
      assert_equal 0, found["range_errors"], "the samples were checked without _id2ref's exceptions"
    end
  end

  def test_annotation_adds_the_sites_and_leaves_every_other_byte_as_dump_all_wrote_it
    found = run_leak("annotate")
    assert found["identical"], "the annotated dump without the added fields is byte for byte dump_all's"
    assert_true_sites(found, "annotate")
  end

  def test_sites_still_match_their_objects_after_gc_compact
    skip "GC.compact is not supported on this platform" unless GC.respond_to?(:compact)

    found = run_leak("annotate", "compact")
    assert found["identical"]
    assert_true_sites(found, "after GC.compact")
  end

  # The rate a result, the log and status give ("sampled (1 in ~N allocations)") is this arming's:
  # after HeapCapture.stop and a new arming, the notes of the earlier run are not set against the
  # new run's allocations (they were: a rate of 1 in ~2 in a test process armed many times), and a
  # full-tracing window's allocations, which the sampled tracer does not see, are not counted. The
  # stop drops the samples: a later dump (tracing "off") gives no estimated site of the earlier run.
  def test_the_rate_after_a_new_arming_and_a_window_is_that_arming_s
    found = run_leak("rearm")
    assert_operator found["live_before_stop"], :>, 0, "the pile-up was sampled: #{found}"
    assert_equal 0, found["live_after_stop"], "stop_sampled drops the samples, though their objects live"
    noted, allocations, in_window = found.values_at("noted", "allocations", "in_window")
    assert_operator noted, :>, 0, "the new run noted allocations"
    assert_operator in_window, :>, 400_000, "the window saw allocations"
    # The script counts from just before the arming and the window, the tracer from just after: a
    # few allocations apart.
    { "rate" => allocations - in_window, "after_window" => allocations - in_window }.each do |key, sampled|
      rate = found[key][/\Asampled \(1 in ~(\d+) allocations\)\z/, 1] or flunk("#{key}: a rate: #{found[key]}")
      assert_in_delta sampled.fdiv(noted), Integer(rate), sampled.fdiv(noted) * 0.02,
                      "#{key}: the rate is the arming's allocations the tracer saw over its notes: #{found}"
    end
  end

  # The first window after an arming stands for the allocations since the arming, not for those made
  # while the tracer was stopped (or before it ever ran: a Rails app's boot): its weight is the
  # usual ~5,100 (HC_TRACER_EVERY x (1 + HC_TRACER_SHARE) for a gap of 100 K to 2.5 M allocations),
  # not the ~20,000 that 10 M unsampled allocations would give it, inflating every site it samples.
  def test_the_first_window_after_an_arming_stands_for_the_arming_s_allocations_only
    found = run_leak("first_window")
    assert_operator found["unsampled"], :>=, 10_000_000
    assert_operator found["windows"], :>, 0, "a window opened after the arming: #{found}"
    assert_operator found["weight"], :<, 2 * 5_100, "the first window's weight: #{found}"
  end

  # 300,000 objects kept from one line, among 5 M allocations, under the sampled tracer: the report
  # (and the capture's own summary) gives that site as an estimate, its objects the sampled ones'
  # weights summed (as a plain Ruby parse of the dump counts them), "sampled" the dump's lines of
  # that site that carry a weight. The bound is statistical: each allocation is sampled with the
  # same chance, ~1 in 5,100 (the weight), so the site's samples are about Poisson with mean
  # 300,000 / 5,100 = ~59 (sd ~7.7, 13%), and each window's weight stands for the ~300,000
  # allocations before it (~6% of the pile-up: the estimate moves by a window's worth at its ends).
  # 0.5x is ~4 sd below the truth, 2x ~8 sd above: a sound sampler never fails it, one off by 2x
  # (a weight computed wrong, samples lost or doubled) always does.
  def test_a_sampled_site_is_an_estimate_near_the_truth
    Dir.mktmpdir("hc-estimate-") do |dir|
      found = run_leak("estimate", dir)
      assert_equal "ok", found["status"], found["error"]
      assert_match(/\Asampled /, found["tracing"])
      file, line = found.values_at("file", "line")
      want = HCTest::DumpParse.tallies(found["location"])
      sampled = want["site_sampled"][[file, line]]
      assert_operator sampled, :>, 0, "the dump's lines of the site carry their weight"
      report = HeapCapture::Summary.of_file(found["location"])
      assert_equal "computed", report["retention"]
      site = report["sites"].find { |s| s.values_at("file", "line") == [file, line] }
      refute_nil site, "the site is among the report's top: #{report['sites'].first(3)}"
      assert_equal true, site["estimated"], site
      assert_equal sampled, site["sampled"], "the lines of that site with a sample_weight"
      assert_equal want["sites"][[file, line]], site.values_at("objects", "memsize"), "the weights summed, as Ruby sums them"
      estimate = site["retained_objects"]
      assert_operator estimate, :>=, 150_000, "~#{estimate} from #{sampled} samples for 300,000 (the bound: above)"
      assert_operator estimate, :<=, 600_000, "~#{estimate} from #{sampled} samples for 300,000 (the bound: above)"
      result_site = found["result_site"]
      assert_equal [true, sampled], result_site&.values_at("estimated", "sampled"), "the capture's summary says so too"
      out, = Open3.capture3(RbConfig.ruby, "-I#{LIB}", File.expand_path("../../exe/heapcapture", __dir__), "report",
                            found["location"])
      assert_match(/^ +~[\d.]+ \S+ +~[\d,]+ +\S+( \S+)?  #{Regexp.escape("#{file}:#{line}")}  \(#{sampled} sampled\)$/, out,
                   "the report's sites table: estimates and the objects seen")
      assert_includes out, "~: an estimate"
    end
  end

  # The same site made in a full-tracing window (what signal's trace_for opens): exact, no weight
  # in the dump, nothing estimated.
  def test_a_site_traced_in_full_is_exact
    Dir.mktmpdir("hc-exact-") do |dir|
      found = run_leak("estimate", dir, "full")
      assert_equal "ok", found["status"], found["error"]
      assert_match(/\Afull \(a 600 s window\)\z/, found["tracing"])
      file, line = found.values_at("file", "line")
      want = HCTest::DumpParse.tallies(found["location"])
      assert_equal 0, want["site_sampled"][[file, line]], "no line of the site carries a weight"
      site = HeapCapture::Summary.of_file(found["location"])["sites"].find { |s| s.values_at("file", "line") == [file, line] }
      assert_equal want["sites"][[file, line]], site.values_at("objects", "memsize"), "every object, counted once"
      # the 300,000 objects, and the call site's caches (IMEMOs: ObjectSpace's tracer gives them the line too)
      assert_includes 300_000..300_010, site["retained_objects"]
      refute site.key?("estimated") || site.key?("sampled"), site
      refute found["result_site"].key?("estimated"), found["result_site"]
    end
  end

  def test_samples_of_objects_that_died_do_not_pile_up
    stats = run_leak("churn")
    assert_operator stats["noted"], :>, 0, "the million allocations were sampled"
    assert_operator stats["samples"], :<=, stats["capacity"], "the table is bounded"
    assert_equal 0, stats["live"], "none of the short-lived objects is still given a site"
  end
end
