# frozen_string_literal: true

require "test_helper"
require "etc"
require "tempfile"

# Dump.spawn_process, which starts the capture's analysis process without forking the app
# (RetentionProcess.spawn): every build on glibc 2.34 or later has it, and the program gets exactly the
# environment given, /dev/null for stdin, the stdout and stderr given and no other descriptor of
# the app's, its exit status reaches Process.wait; what cannot be started is an error that says what.
class SpawnProcessTest < HCTest::TestCase
  DUMP = HeapCapture::Dump

  def setup
    super
    skip "this build has no Dump.spawn_process (it needs glibc 2.34)" unless DUMP.respond_to?(:spawn_process) ||
                                                                             name == "test_every_glibc_2_34_build_has_it"
  end

  def test_every_glibc_2_34_build_has_it
    glibc = Etc.respond_to?(:confstr) && defined?(Etc::CS_GNU_LIBC_VERSION) && Etc.confstr(Etc::CS_GNU_LIBC_VERSION)
    skip "not a glibc build" unless glibc&.start_with?("glibc ")
    skip "#{glibc}: closefrom needs glibc 2.34" if Gem::Version.new(glibc.split.last) < Gem::Version.new("2.34")
    assert_respond_to DUMP, :spawn_process
  end

  def test_the_program_gets_what_it_is_given_and_nothing_else
    left_open = File.open(File::NULL)
    left_open.close_on_exec = false # as a C library's socket may be
    script = "readlink /proc/self/fd/0; if [ -e /proc/self/fd/#{left_open.fileno} ]; then echo open; " \
             "else echo closed; fi; echo \"[$HC_GIVEN][$HOME]\"; echo said >&2; exit 7"
    out, err, status = run_it("/bin/sh", ["sh", "-c", script], ["HC_GIVEN=yes", "PATH=/usr/bin:/bin"])
    assert_equal "/dev/null\nclosed\n[yes][]\n", out
    assert_equal "said\n", err
    assert_equal 7, status.exitstatus
  ensure
    left_open&.close
  end

  def test_what_cannot_be_started_says_what
    error = assert_raises(Errno::ENOENT) { run_it("/nonexistent/hc-program", ["x"], []) }
    assert_equal "No such file or directory - starting /nonexistent/hc-program", error.message
    assert_raises(ArgumentError) { DUMP.spawn_process("/bin/true", [], [], 1, 2) }
    assert_raises(TypeError) { DUMP.spawn_process("/bin/true", ["true", 1], [], 1, 2) }
    assert_raises(ArgumentError) { DUMP.spawn_process("/bin/true", ["true"], ["A=\0"], 1, 2) }
  end

  private

  def run_it(program, argv, env)
    Tempfile.create("hc-spawn-out") do |out|
      Tempfile.create("hc-spawn-err") do |err|
        pid = DUMP.spawn_process(program, argv, env, out.fileno, err.fileno)
        _, status = Process.wait2(pid)
        return [File.read(out.path), File.read(err.path), status]
      end
    end
  end
end
