# frozen_string_literal: true

require "test_helper"
require_relative "../support/listener_helpers"
require_relative "../support/app_helpers"
require_relative "../support/rails_app"

# A real Rails app (Debian's railties) with a Gemfile of its own, set up as
# doc/integrations.md says: the Railtie gives it `rake heapcapture:signal`, the task runs the app's
# initializers before signalling (the database is set only there), heapcapture logs through
# Rails.logger, and a process of the app armed with `exclusive` captures its heap when the task
# signals.
class RailsAppTest < HCTest::TestCase
  include HCTest::ListenerHelpers
  include HCTest::AppHelpers

  # No database or dyno from the environment: the app's initializer and the test's env name them.
  NO_ENV_SETTINGS = { "DATABASE_URL" => nil, "HEAPCAPTURE_DATABASE_URL" => nil, "DYNO" => nil,
                      "HEAPCAPTURE_DYNO" => nil, "HEAPCAPTURE_DESTINATION" => nil }.freeze

  def setup
    super
    @rails_dir = Dir.mktmpdir("heapcapture-rails-")
    @dumps = File.join(@rails_dir, "dumps")
    write_rails_app
  end

  def teardown
    stop_servers
    FileUtils.rm_rf(@rails_dir)
    super
  end

  def test_the_railtie_lists_the_task_in_rake_t
    out, status = rake("-T", "heapcapture")
    assert status.success?, out
    assert_match(/^rake heapcapture:signal\[payload,process_type,dynos,wait,trace_for\]\s+# Tell the selected dynos/, out)
  end

  def test_the_rake_task_reaches_an_armed_process_of_the_app_which_logs_through_rails_logger
    ready = File.join(@rails_dir, "tmp/armed")
    start_server(app_env.merge("DYNO" => "web.1"), "-e", <<~RUBY)
      require #{File.join(@rails_dir, 'config/environment').inspect}
      HeapCapture.exclusive or abort "not armed"
      200.times { break if HeapCapture.status[:connected]; sleep 0.05 }
      File.write(#{ready.inspect}, Process.pid.to_s)
      sleep
    RUBY
    wait_for("the Rails process to arm (#{server_log})", timeout: 30) { File.exist?(ready) }
    worker_pid = Integer(File.read(ready))

    out, status = rake("heapcapture:signal[from rails,web,1,60]")

    assert status.success?, out
    assert_match(%r{^web\.1 pid #{worker_pid}: ok #{Regexp.escape(@dumps)}/\S+-web\.1-pid#{worker_pid}-heap\.ndjson\.gz }, out)
    stored = Dir[File.join(@dumps, "*.ndjson.gz")]
    assert_equal 1, stored.size, "one dump in #{@dumps}: #{stored.inspect}"
    assert_operator File.size(stored.first), :>, 0

    rails_log = HCTest::Services.read_log(File.join(@rails_dir, "log/development.log"))
    assert_match(/^heapcapture: armed in web\.1 \(pid #{worker_pid}\): listening on heapcapture_web_1/, rails_log)
    assert_match(/^heapcapture: notification on heapcapture_web_1 .*: capturing/, rails_log)
    assert_match(%r{^heapcapture: heap dump stored at #{Regexp.escape(@dumps)}/}, rails_log)
    # The task loaded the environment, so it logged through Rails.logger too.
    assert_match(/^heapcapture: signalled heapcapture_web_1 \(request \d+/, rails_log)
  end

  private

  # heapcapture comes from this checkout through RUBYLIB, as in the other app tests, so the
  # extension built here is the one used.
  def write_rails_app
    HCTest::RailsApp.write(@rails_dir, initializer: <<~RUBY)
      HeapCapture.configure do |c|
        c.database_url = #{@pg.url.inspect}
        c.destination = "file://#{@dumps}"
        c.tmpdir = #{File.join(@rails_dir, 'tmp').inspect}
      end
    RUBY
  end

  # The app's processes run with its bundle, and with no settings from the environment.
  def app_env = NO_ENV_SETTINGS.merge("BUNDLE_GEMFILE" => File.join(@rails_dir, "Gemfile"))

  # rake in the app's directory, killed after 90 s: [stdout and stderr, status].
  def rake(*args)
    out, err, status = run_command(app_env.merge("RUBYLIB" => File.join(ROOT, "lib")), RbConfig.ruby,
                                   Gem.bin_path("rake", "rake"), *args, timeout: 90, chdir: @rails_dir)
    [out + err, status]
  end
end
