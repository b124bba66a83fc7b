# frozen_string_literal: true

require "test_helper"
require "rbconfig"
require "tmpdir"
require "fileutils"
require "rubygems/package"
require_relative "../support/app_helpers"
require_relative "../support/rails_app"

# heapcapture as users get it: the .gem built from the gemspec, installed into an empty GEM_HOME
# (the extension compiled by `gem install`), then used from outside the checkout with no -Ilib:
# required, its command run, its Rake task listed by a Rails app that bundles it.
class GemPackageTest < HCTest::TestCase
  include HCTest::AppHelpers

  ROOT = HCTest::ROOT
  BUILD_TIMEOUT = 120   # gem build
  INSTALL_TIMEOUT = 300 # gem install compiles the extension

  class << self
    attr_accessor :package # built and installed once per run: { dir:, gem:, home:, build_out: }
  end

  Minitest.after_run { FileUtils.rm_rf(package[:dir]) if package }

  def setup
    super
    self.class.package ||= build_and_install
    @package = self.class.package
    @outside = Dir.mktmpdir("heapcapture-outside-")
  end

  def teardown
    FileUtils.rm_rf(@outside)
    super
  end

  def test_the_gem_builds_without_warnings_and_ships_every_file_lib_holds_and_the_docs
    refute_match(/WARNING/, @package[:build_out])
    shipped = Gem::Package.new(@package[:gem]).spec.files
    in_lib = Dir.chdir(ROOT) { Dir["lib/**/*"].reject { |f| File.directory?(f) || f.end_with?(".so") } }
    assert_empty in_lib - shipped, "files under lib/ that the gem does not ship"
    assert_includes shipped, "lib/heapcapture/tasks/heapcapture.rake"
    Dir.chdir(ROOT) { Dir["doc/*.md"] }.each { |doc| assert_includes shipped, doc }
    spec = Gem::Package.new(@package[:gem]).spec
    assert spec.homepage, "homepage"
    %w[source_code_uri changelog_uri].each { |key| assert spec.metadata[key], "metadata #{key}" }
  end

  def test_the_installed_gem_loads_from_outside_the_checkout_without_ilib
    out, err, status = installed_ruby("-e", <<~RUBY)
      require "heapcapture"
      puts HeapCapture::VERSION
      puts $LOADED_FEATURES.grep(%r{/heapcapture/heapcapture\\.so\\z}).first
      puts HeapCapture.method(:exclusive).source_location.first
    RUBY
    assert status.success?, err
    version, native, ruby = out.lines.map(&:chomp)
    assert_equal HeapCapture::VERSION, version
    assert native.start_with?(@package[:home]), "the extension comes from the installed gem: #{native}"
    assert ruby.start_with?(@package[:home]), "the Ruby code comes from the installed gem: #{ruby}"
  end

  def test_the_installed_command_answers_help
    out, err, status = run_command(installed_env, File.join(@package[:home], "bin/heapcapture"), "--help",
                                   timeout: 60, chdir: @outside)
    assert status.success?, err
    assert_match(/\AUsage: heapcapture COMMAND/, out)
    %w[signal list fetch].each { |command| assert_match(/^  #{command} /, out) }
    out, err, status = run_command(installed_env, File.join(@package[:home], "bin/heapcapture"), "--version",
                                   timeout: 60, chdir: @outside)
    assert status.success?, err
    assert_equal "heapcapture #{HeapCapture::VERSION} (gzip by ISA-L, redaction by libsodium, Ruby #{RUBY_VERSION})\n", out,
                 "gem install built it with ISA-L and libsodium, which bin/setup installs"
  end

  def test_a_plain_rakefile_gets_the_task_from_the_installed_gem
    File.write(File.join(@outside, "Rakefile"), %(require "heapcapture/tasks"\n))
    out, err, status = run_command(installed_env(with_system_gems: true), RbConfig.ruby, rake_bin, "-T", "heapcapture",
                                   timeout: 60, chdir: @outside)
    assert status.success?, err
    assert_match(/^rake heapcapture:signal\[payload,process_type,dynos,wait,trace_for\]/, out)
  end

  def test_a_rails_app_that_bundles_the_installed_gem_lists_the_task
    app = File.join(@outside, "app")
    HCTest::RailsApp.write(app, gems: [%(gem "heapcapture", "#{HeapCapture::VERSION}")],
                                initializer: %(HeapCapture.configure { |c| c.tmpdir = #{File.join(app, 'tmp').inspect} }\n))
    env = installed_env(with_system_gems: true).merge("BUNDLE_GEMFILE" => File.join(app, "Gemfile"))
    out, err, status = run_command(env, RbConfig.ruby, bundle_bin, "install", "--local", "--quiet", timeout: 120, chdir: app)
    assert status.success?, "bundle install --local in the Rails app:\n#{out}#{err}"

    out, err, status = run_command(env, RbConfig.ruby, bundle_bin, "exec", "rake", "-T", "heapcapture", timeout: 120,
                                                                                                        chdir: app)
    assert status.success?, "rake -T in a Rails app bundling the installed gem:\n#{out}#{err}"
    assert_match(/^rake heapcapture:signal\[payload,process_type,dynos,wait,trace_for\]\s+# Tell the selected dynos/, out)
    lock = File.read(File.join(app, "Gemfile.lock"), encoding: "UTF-8")
    assert_match(/^    heapcapture \(#{Regexp.escape(HeapCapture::VERSION)}\)$/, lock)
  end

  private

  def build_and_install
    dir = Dir.mktmpdir("heapcapture-gem-")
    gem = File.join(dir, "heapcapture.gem")
    home = File.join(dir, "gem_home")
    build_out, build_err, status = run_command(clean_env, RbConfig.ruby, "-S", "gem", "build", "heapcapture.gemspec",
                                               "--output", gem, timeout: BUILD_TIMEOUT, chdir: ROOT)
    assert status.success?, "gem build failed:\n#{build_out}#{build_err}"
    out, err, status = run_command(clean_env.merge("GEM_HOME" => home, "GEM_PATH" => home), RbConfig.ruby, "-S", "gem",
                                   "install", "--local", "--no-document", "--install-dir", home, gem,
                                   timeout: INSTALL_TIMEOUT, chdir: dir)
    assert status.success?, "gem install of the built gem failed:\n#{out}#{err}"
    { dir: dir, gem: gem, home: home, build_out: build_out + build_err }
  end

  # The environment a user has: none of this suite's bundle, load path or RUBYOPT.
  def clean_env
    keys = ENV.keys.grep(/\A(BUNDLE_|BUNDLER_|RUBYOPT\z|RUBYLIB\z|GEM_HOME\z|GEM_PATH\z)/)
    keys.to_h { |key| [key, nil] }
  end

  # Only the installed gem; with_system_gems: Debian's gems too (railties, rake, bundler).
  def installed_env(with_system_gems: false)
    home = @package[:home]
    # the system's gems: Ruby's own directories, and the GEM_HOME a Ruby series of its own installs
    # into (bin/ruby-env: Ruby 3.4 from experimental, whose gems with C code come from the gem server)
    system = [*Gem.default_path, ENV.fetch("GEM_HOME", nil)].compact.uniq
    path = with_system_gems ? [home, *system].join(File::PATH_SEPARATOR) : home
    clean_env.merge("GEM_HOME" => home, "GEM_PATH" => path, "PATH" => "#{home}/bin:#{ENV['PATH']}")
  end

  def installed_ruby(*args)
    run_command(installed_env, RbConfig.ruby, *args, timeout: 60, chdir: @outside)
  end

  def rake_bin = Gem.bin_path("rake", "rake")
  def bundle_bin = Gem.bin_path("bundler", "bundle")
end
