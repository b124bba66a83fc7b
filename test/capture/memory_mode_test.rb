# frozen_string_literal: true

require "test_helper"
require "json"
require "open3"
require "timeout"
require "tmpdir"
require_relative "../support/memory_cgroup"

# Mode auto under a memory limit: a process in a memory cgroup of the test's own (or, where none
# can be made, with a memory_limit setting) captures with room to fork, then with only room for
# inline mode (which it takes, saying why), then with less than inline needs (refused, with the
# figures). The limit is moved between captures, above what the group uses.
class MemoryModeTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  MB = 1024 * 1024
  INLINE_MB = HeapCapture::MemoryGuard::INLINE_NEED / MB

  def test_auto_forks_with_room_goes_inline_with_little_and_refuses_with_less
    Dir.mktmpdir("hc-mode-") do |dir|
      cgroup = HCTest::MemoryCgroup.create("heapcapture-test-#{Process.pid}")
      with_probe(dir) do |pid, ask|
        cgroup&.add(pid)
        rss = ask.call("build 250")["rss"]
        limit_for = lambda do |free|
          if cgroup
            cgroup.limit = cgroup.used + free
            nil
          else
            rss + free
          end
        end
        roomy = ask.call("capture #{limit_for.call(400 * MB)}".strip)
        tight = ask.call("capture #{limit_for.call(100 * MB)}".strip)
        none = ask.call("capture #{limit_for.call(INLINE_MB / 2 * MB)}".strip) # less than inline needs
        source = cgroup ? "cgroup v#{cgroup.version}" : "memory_limit setting"
        puts "\nmemory guard (#{source}, #{rss / MB} MB RSS): #{roomy['mode_reason']} | #{tight['mode_reason']} | " \
             "#{none['error']}"

        assert_equal %w[ok fork], roomy.values_at("status", "mode"), roomy["error"]
        assert_match(/\Aauto: fork needs ~\d+ MB, \d+ MB free of \d+ MB \(#{source}/, roomy["mode_reason"])
        assert_kind_of Integer, roomy["memory_limit_bytes"]
        assert_equal %w[ok inline], tight.values_at("status", "mode"), tight["error"]
        assert_match(/\Aauto: inline, as fork would need ~\d+ MB and \d+ MB free of \d+ MB \(#{source}.*\); inline needs ~#{INLINE_MB} MB#{HeapCapture::MemoryGuard::INLINE_NOTE}\z/, # rubocop:disable Layout/LineLength
                     tight["mode_reason"])
        assert_equal "error", none["status"]
        assert_match(/\Anot enough memory for a capture: fork needs ~\d+ MB and inline needs ~#{INLINE_MB} MB \(each with a 25% margin\), but \d+ MB are free of the \d+ MB limit \(#{source}/, # rubocop:disable Layout/LineLength
                     none["error"])
        assert_nil none["mode"], "nothing ran"
        assert_empty Dir.children(dir) - ["dumps"], "no tempfile left"
      end
    ensure
      cgroup&.limit = "max" if cgroup&.version == 2
      cgroup&.destroy
    end
  end

  private

  def with_probe(dir)
    cmd = [RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", File.join(ROOT, "test/support/mode_probe.rb"), dir]
    Open3.popen3(*cmd) do |stdin, stdout, stderr, wait|
      err = Thread.new { stderr.read }
      ask = lambda do |command|
        stdin.puts command
        stdin.flush
        line = Timeout.timeout(120) { stdout.gets } or flunk("the probe ended: #{err.value}")
        JSON.parse(line)
      end
      pid = JSON.parse(Timeout.timeout(60) { stdout.gets })["ready"]
      yield pid, ask
      stdin.puts "quit"
      stdin.close
      assert wait.value.success?, "the probe failed: #{err.value}"
    end
  end
end
