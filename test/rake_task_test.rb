# frozen_string_literal: true

require "test_helper"
require "rake"
require_relative "support/listener_helpers"

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
    assert_equal %i[payload process_type dynos wait], task.arg_names
  end

  def test_the_task_signals_and_prints_the_results
    record_captures
    arm("web.1")
    out, = capture_io { Rake::Task["heapcapture:signal"].invoke("from rake", "web", "1", "10") }
    assert_equal "from rake", next_delivery.first
    assert_equal "web.1 pid #{Process.pid}: ok file:///tmp/test-9 9 bytes\n", out
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
end
