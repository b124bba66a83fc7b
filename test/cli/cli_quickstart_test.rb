# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require "open3"
require "json"
require "tmpdir"

# The first two commands of doc/cli.md's quick start (the README's), run as written against a
# process armed with HeapCapture.exclusive that really captures into the S3 test server.
class CLIQuickstartTest < HCTest::TestCase
  ROOT = HCTest::ROOT
  DOC = File.join(ROOT, "doc/cli.md")

  def setup
    super
    HCTest::Services.start!
    @workdir = Dir.mktmpdir("heapcapture-quickstart-")
    @env = { "HEAPCAPTURE_DESTINATION" => "s3://#{HCTest::Services::BUCKET}/quickstart-#{Process.pid}-#{rand(1 << 30)}/",
             "PATH" => "#{ROOT}/exe:#{ENV['PATH']}", "RUBYLIB" => "#{ROOT}/lib" }
  end

  def teardown
    if @armed
      Process.kill("KILL", @armed)
      Process.waitpid(@armed)
    end
    FileUtils.rm_rf(@workdir)
    super
  end

  def quickstart_commands
    block = File.read(DOC, encoding: "UTF-8")[/```sh\n(.*?)```/m, 1]
    block.lines.grep(/\A\$ /).map { |line| line.delete_prefix("$ ").chomp }
  end

  def arm_web_1
    @armed, line = HCTest.spawn_armed_process(@env, dyno: "web.1", fake_capture: false, linger: 120,
                                                    connect_timeout: 15)
    assert_equal "listening\n", line
  end

  def test_the_first_two_quickstart_commands_capture_and_fetch_a_heap_dump
    commands = quickstart_commands
    assert_equal ["heapcapture signal --wait 120", "heapcapture fetch latest"], commands.first(2)
    arm_web_1

    out, err, status = Open3.capture3(@env, *commands[0].split, chdir: @workdir)
    assert status.success?, "#{out}\n#{err}"
    location = out[%r{\Aweb\.1 pid #{@armed}: ok (s3://\S+) \d+ bytes http}, 1]
    assert location, out

    out, err, status = Open3.capture3(@env, *commands[1].split, chdir: @workdir)
    assert status.success?, "#{out}\n#{err}"
    assert_match(/\Afetched #{Regexp.escape(location)} to /, out)
    path = File.join(@workdir, File.basename(location, ".gz"))
    assert File.size(path).positive?
    File.foreach(path, encoding: "UTF-8").first(1000).each { |line| assert_kind_of Hash, JSON.parse(line) }
  end
end
