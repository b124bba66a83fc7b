# frozen_string_literal: true

require "test_helper"
require "rake"
require_relative "../support/listener_helpers"
require_relative "../support/app_helpers"

# The heapcapture:signal Rake task in a plain Rake application (as a Rakefile or the Railtie loads it;
# the Railtie in a real Rails app: rails_app_test.rb).
class RakeTaskTest < HCTest::TestCase
  include HCTest::ListenerHelpers

  def setup
    super
    @previous = Rake.application
    Rake.application = Rake::Application.new
    Rake::TaskManager.record_task_metadata = true # what `rake -T` turns on: keeps descriptions
    load File.join(ROOT, "lib/heapcapture/tasks/heapcapture.rake")
  end

  def teardown
    Rake.application = @previous
    super
  end

  def test_the_task_is_defined_with_a_description
    task = Rake::Task["heapcapture:signal"]
    assert_match(/capture a heap dump/, task.comment)
    assert_equal %i[payload process_type dynos wait trace_for], task.arg_names
  end

  def test_the_task_signals_and_prints_the_results
    record_captures
    arm("web.1")
    out, = capture_io { Rake::Task["heapcapture:signal"].invoke("from rake", "web", "1", "10") }
    assert_equal "from rake", next_delivery.first
    assert_equal "web.1 pid #{Process.pid}: ok file:///tmp/test-9 9 bytes\n", out
  end

  def test_the_task_passes_trace_for_on
    record_captures
    arm("web.1")
    out, = capture_io { Rake::Task["heapcapture:signal"].invoke("traced", "web", "1", "20", "0.5") }
    assert_equal "traced", next_delivery.first, "the capture after the window gets the payload"
    assert_equal "web.1 pid #{Process.pid}: ok file:///tmp/test-6 6 bytes\n", out
  end

  def test_the_task_reads_the_environment_when_given_no_arguments
    conn = watcher("heapcapture_worker_1", "heapcapture_worker_2")
    ENV.update("PAYLOAD" => "env payload", "PROCESS_TYPE" => "worker", "DYNOS" => "2")
    out, = capture_io { Rake::Task["heapcapture:signal"].invoke }
    assert_equal "signalled heapcapture_worker_1\nsignalled heapcapture_worker_2\n", out
    assert_equal ["env payload"], notifications(conn).map(&:last).uniq
  ensure
    %w[PAYLOAD PROCESS_TYPE DYNOS].each { |k| ENV.delete(k) }
  end

  def test_the_task_runs_the_environment_task_first_when_there_is_one
    ran = []
    Rake::Task.define_task(:environment) { ran << :environment }
    conn = watcher("heapcapture_web_1")
    capture_io { Rake::Task["heapcapture:signal"].invoke }
    assert_equal [:environment], ran
    assert_equal ["go"], notifications(conn).map(&:last)
  end

  def test_the_task_fails_when_nobody_answers
    error = assert_raises(SystemExit) { capture_io { Rake::Task["heapcapture:signal"].invoke("go", "web", "1", "0.2") } }
    refute error.success?
  end

  def test_the_task_names_a_selected_dyno_that_did_not_answer_and_fails
    record_captures
    arm("web.1", dynos: 2)
    out, err = capture_io do
      error = assert_raises(SystemExit) { Rake::Task["heapcapture:signal"].invoke("go", "web", "2", "3") }
      assert_equal 1, error.status
    end
    assert_equal "web.1 pid #{Process.pid}: ok file:///tmp/test-2 2 bytes\n", out
    assert_match(/\Aheapcapture: web\.2: no reply within 3\.0 s on heapcapture_web_2 /, err)
  end

  # As `heapcapture signal`: one line for bad input, no "rake aborted!", no trace, exit 2.
  def test_bad_arguments_are_one_line_and_exit_two
    _out, err = capture_io do
      error = assert_raises(SystemExit) { Rake::Task["heapcapture:signal"].invoke("go", "web", "zero") }
      assert_equal 2, error.status
    end
    assert_equal "heapcapture: invalid argument: --dynos zero (see heapcapture signal --help)\n", err
  end
end

# The task run by rake itself in a plain Rakefile, with no logger chosen by the app: it prints what
# `heapcapture signal` prints, and the library's INFO lines stay out of stdout as they do there.
class RakeTaskProcessTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::AppHelpers

  def test_the_task_prints_only_what_the_command_prints
    dir = Dir.mktmpdir("heapcapture-rakefile-")
    File.write(File.join(dir, "Rakefile"), %(require "heapcapture/tasks"\n))
    conn = watcher("heapcapture_web_1")
    out, err, status = run_command({ "DATABASE_URL" => @pg.url, "RUBYLIB" => File.join(ROOT, "lib") }, RbConfig.ruby,
                                   Gem.bin_path("rake", "rake"), "heapcapture:signal[from a rakefile]", timeout: 60,
                                                                                                        chdir: dir)
    assert status.success?, err
    assert_equal "signalled heapcapture_web_1\n", out
    assert_equal "", err
    assert_equal ["from a rakefile"], notifications(conn).map(&:last)

    cli_out, cli_err, = heapcapture_cli("signal", "from a rakefile")
    assert_equal [cli_out, cli_err], [out, err]
  ensure
    FileUtils.rm_rf(dir) if dir
  end
end
