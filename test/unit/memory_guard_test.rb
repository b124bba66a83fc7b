# frozen_string_literal: true

require "test_helper"
require "tmpdir"
require "fileutils"
require "minitest/mock"

# The memory guard's choice of mode from the limit and what is in use, and the cgroup files it
# reads them from (v2 with an enclosing group's limit, v1, none), laid out in a folder as the
# kernel lays them out.
class MemoryGuardTest < HCTest::TestCase
  MB = 1024 * 1024
  # inline mode's estimate with its margin: 80 MB, or 20 MB where dump_all takes no buffer of ours (3.4+)
  INLINE_MB = HeapCapture::MemoryGuard::INLINE_NEED / MB
  # fork's estimate for a 400 MB process, with its margin: 200 MB
  FORK_MB = 200

  def config(**settings) = HeapCapture::Configuration.new({}).apply(settings)

  # The capture-time retention analysis: its estimate half the ndjson bytes and 26 MB for its
  # process's Ruby and buffers, with the 25% margin, against what the limit leaves free of this
  # process's RSS.
  def test_the_retention_analysis_runs_when_its_estimate_fits_the_limit
    assert_equal (100 * MB / 2) + (26 * MB), HeapCapture::MemoryGuard.retention_need(100 * MB)
    rss = HeapCapture::Dump.rss
    assert_equal [true, nil], HeapCapture::MemoryGuard.retention_fits(config(memory_limit: rss + (200 * MB)), 100 * MB)
    fits, why = HeapCapture::MemoryGuard.retention_fits(config(memory_limit: rss + (100 * MB)), 100 * MB)
    refute fits
    assert_match(/\Ait needs ~125 MB, (99|100) MB are free of the \d+ MB limit \(memory_limit setting/, why)
  end

  def test_auto_forks_when_the_fork_estimate_fits
    d = HeapCapture::MemoryGuard.decide(config(memory_limit: 1000 * MB), 400 * MB, fork_possible: true)
    assert_equal :fork, d.mode
    assert_equal 1000 * MB, d.limit
    assert_equal "auto: fork needs ~#{FORK_MB} MB, 600 MB free of 1000 MB (memory_limit setting, this process's RSS)", d.reason
  end

  def test_auto_goes_inline_when_only_inline_fits_and_says_why
    d = HeapCapture::MemoryGuard.decide(config(memory_limit: "512MB"), 400 * MB, fork_possible: true)
    assert_equal :inline, d.mode
    assert_equal "auto: inline, as fork would need ~#{FORK_MB} MB and 112 MB free of 512 MB (memory_limit setting, " \
                 "this process's RSS); inline needs ~#{INLINE_MB} MB#{HeapCapture::MemoryGuard::INLINE_NOTE}", d.reason
  end

  def test_refused_with_the_figures_when_nothing_fits
    d = HeapCapture::MemoryGuard.decide(config(memory_limit: 410 * MB), 400 * MB, fork_possible: true)
    assert_nil d.mode
    assert_equal 410 * MB, d.limit
    assert_equal "not enough memory for a capture: fork needs ~#{FORK_MB} MB and inline needs ~#{INLINE_MB} MB (each with a " \
                 "25% margin), but 10 MB are free of the 410 MB limit (memory_limit setting, this process's RSS, 400 MB " \
                 "in use); nothing was started. Capture when the process is smaller, or raise the limit " \
                 "(memory_limit, HEAPCAPTURE_MEMORY_LIMIT)", d.reason
  end

  def test_a_forced_mode_is_held_to_its_estimate_too
    assert_equal :fork, HeapCapture::MemoryGuard.decide(config(mode: :fork, memory_limit: 1000 * MB), 400 * MB).mode
    refused = HeapCapture::MemoryGuard.decide(config(mode: :fork, memory_limit: 512 * MB), 400 * MB)
    assert_nil refused.mode
    assert_match(/\Anot enough memory for a capture: fork needs ~#{FORK_MB} MB \(each/, refused.reason)
    inline = HeapCapture::MemoryGuard.decide(config(mode: :inline, memory_limit: 512 * MB), 400 * MB)
    assert_equal [:inline, "mode inline (set): needs ~#{INLINE_MB} MB, 112 MB free of 512 MB (memory_limit setting, " \
                           "this process's RSS)#{HeapCapture::MemoryGuard::INLINE_NOTE}"], [inline.mode, inline.reason]
  end

  def test_without_a_limit_auto_forks_where_it_can
    Dir.mktmpdir do |dir| # no cgroup limit: a /proc with no cgroup mounts
      proc_dir = fake_proc(dir, mountinfo: "", cgroup: "0::/\n")
      assert_nil HeapCapture::Cgroup.memory(proc_dir: proc_dir)
    end
    HeapCapture::Cgroup.stub(:memory, nil) do
      d = HeapCapture::MemoryGuard.decide(config, 400 * MB, fork_possible: true)
      assert_equal [:fork, "auto: no memory limit known (no cgroup limit, no memory_limit setting)", nil],
                   [d.mode, d.reason, d.limit]
      d = HeapCapture::MemoryGuard.decide(config(mode: :inline), 400 * MB)
      assert_equal [:inline, "mode inline (set)", nil], [d.mode, d.reason, d.limit]
    end
    no_fork = HeapCapture::MemoryGuard.decide(config(memory_limit: 1000 * MB), 400 * MB, fork_possible: false)
    assert_equal :inline, no_fork.mode
    assert_match(/this Ruby cannot fork/, no_fork.reason)
  end

  def test_a_measured_fork_cost_raises_the_next_estimate
    HeapCapture::MemoryGuard.learn(350 * MB, 400 * MB)
    assert_in_delta 0.875, HeapCapture::MemoryGuard.fork_share, 0.001
    HeapCapture::MemoryGuard.learn(10 * MB, 400 * MB)
    assert_in_delta 0.875, HeapCapture::MemoryGuard.fork_share, 0.001, "a cheap capture does not lower it"
    d = HeapCapture::MemoryGuard.decide(config(memory_limit: 800 * MB), 400 * MB, fork_possible: true)
    assert_equal :inline, d.mode, "fork now needs ~438 MB, 400 MB are free"
  end

  def test_memory_limit_sizes
    { "536870912" => 512 * MB, "512MB" => 512 * MB, "512 MiB" => 512 * MB, "1.5GB" => 1536 * MB, "2g" => 2048 * MB,
      "64k" => 65_536, 1000 => 1000 }.each do |text, bytes|
      assert_equal bytes, config(memory_limit: text).memory_limit, text.inspect
    end
    assert_equal 256 * MB, HeapCapture::Configuration.new("HEAPCAPTURE_MEMORY_LIMIT" => "256MB").memory_limit
    ["lots", "-5", "0", "5 parsecs", ""].each do |bad|
      error = assert_raises(HeapCapture::ConfigurationError) { config(memory_limit: bad) }
      assert_equal "heapcapture: memory_limit must be a size in bytes above 0 (536870912, \"512MB\", \"1.5GB\"), " \
                   "got #{bad.inspect}", error.message
    end
    assert_equal :auto, HeapCapture::Configuration.new({}).mode, "the default mode"
  end

  def test_cgroup_v2_takes_the_smallest_limit_up_the_tree_and_leaves_out_inactive_file_cache
    Dir.mktmpdir do |dir|
      root = File.join(dir, "sys/fs/cgroup")
      write(root, "memory.max" => "max") # the root group
      write(File.join(root, "dyno"), "memory.max" => "536870912", "memory.current" => "400000000",
                                     "memory.stat" => "anon 300000000\ninactive_file 100000000\n")
      write(File.join(root, "dyno/web"), "memory.max" => "max", "memory.current" => "390000000")
      proc_dir = fake_proc(dir, mountinfo: "30 25 0:26 / #{root} rw,nosuid - cgroup2 cgroup2 rw\n", cgroup: "0::/dyno/web\n")
      memory = HeapCapture::Cgroup.memory(proc_dir: proc_dir)
      assert_equal [536_870_912, 300_000_000, "cgroup v2 #{root}/dyno/memory.max"], memory.to_a
    end
  end

  def test_cgroup_v1_reads_the_hierarchical_limit
    Dir.mktmpdir do |dir|
      mount = File.join(dir, "sys/fs/cgroup/memory")
      group = File.join(mount, "docker/abc")
      write(group, "memory.limit_in_bytes" => "9223372036854771712", "memory.usage_in_bytes" => "200000000",
                   "memory.stat" => "cache 5\nhierarchical_memory_limit 1073741824\ntotal_inactive_file 50000000\n")
      mountinfo = "35 25 0:30 / #{mount} rw,nosuid - cgroup cgroup rw,memory\n"
      proc_dir = fake_proc(dir, mountinfo: mountinfo, cgroup: "4:memory:/docker/abc\n3:cpu:/\n")
      assert_equal [1_073_741_824, 150_000_000, "cgroup v1 #{group}/memory.limit_in_bytes"],
                   HeapCapture::Cgroup.memory(proc_dir: proc_dir).to_a
      write(group, "memory.stat" => "hierarchical_memory_limit 9223372036854771712\n")
      assert_nil HeapCapture::Cgroup.memory(proc_dir: proc_dir), "no limit set"
    end
  end

  def test_a_container_that_sees_its_group_as_the_root
    Dir.mktmpdir do |dir|
      root = File.join(dir, "sys/fs/cgroup")
      write(root, "memory.max" => "268435456", "memory.current" => "100000000", "memory.stat" => "")
      proc_dir = fake_proc(dir, mountinfo: "30 25 0:26 / #{root} rw - cgroup2 cgroup2 rw\n", cgroup: "0::/kubepods/pod1\n")
      assert_equal [268_435_456, 100_000_000], HeapCapture::Cgroup.memory(proc_dir: proc_dir).to_a.first(2)
    end
  end

  private

  def write(dir, files)
    FileUtils.mkdir_p(dir)
    files.each { |name, text| File.write(File.join(dir, name), text) }
  end

  def fake_proc(dir, mountinfo:, cgroup:)
    proc_dir = File.join(dir, "proc/self")
    write(proc_dir, "mountinfo" => mountinfo, "cgroup" => cgroup)
    proc_dir
  end
end
