# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "tmpdir"

# heapcapture's sampled tracer: a process that lets objects pile up (a leak) beside other work
# gets a fraction of them (never none) annotated with exactly their true site, no object gets a
# wrong one, and every other byte of the dump is dump_all's. Each case runs in a process of its own
# (test/support/sampled_leak.rb): the tracer is process-wide.
class SampledTracingTest < HCTest::TestCase
  SCRIPT = File.expand_path("support/sampled_leak.rb", __dir__)
  LIB = File.expand_path("../lib", __dir__)

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
      # The child checks the samples in place (it left 693 of _id2ref's exceptions here when it did not);
      # a few may be the app's own, from the pruning of a full table (at most 32 per window).
      assert_operator found["range_errors"], :<, 64, "the samples were checked in place: no _id2ref exceptions"
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

  def test_samples_of_objects_that_died_do_not_pile_up
    stats = run_leak("churn")
    assert_operator stats["noted"], :>, 0, "the million allocations were sampled"
    assert_operator stats["samples"], :<=, stats["capacity"], "the table is bounded"
    assert_equal 0, stats["live"], "none of the short-lived objects is still given a site"
  end
end
