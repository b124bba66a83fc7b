# frozen_string_literal: true

require "test_helper"
require "open3"
require "rbconfig"
require "tmpdir"

# ext/heapcapture/extconf.rb as `gem install` runs it, in a directory of its own: what it says when
# a library is missing (libpq hidden from its checks here), and which gzip engine it took.
class ExtconfTest < HCTest::TestCase
  EXTCONF = File.expand_path("../../ext/heapcapture/extconf.rb", __dir__)

  # Runs extconf.rb with `hide` (Ruby code defining mkmf overrides) loaded first.
  def extconf(*args, hide: "")
    Dir.mktmpdir("heapcapture-extconf-") do |dir|
      script = "require 'mkmf'\n#{hide}\nload #{EXTCONF.inspect}"
      Open3.capture3(RbConfig.ruby, "-e", script, "--", *args, chdir: dir) # mkmf reads ARGV when required
    end
  end

  def test_a_missing_library_names_its_package_and_what_a_gem_user_does_next
    hide = <<~RUBY
      def pkg_config(name, *args) = name == "libpq" ? nil : super
      def have_library(lib, *args, &block) = lib == "pq" ? false : super
      def find_executable(name, *args) = name == "pg_config" ? nil : super
    RUBY
    _out, err, status = extconf(hide: hide)
    refute status.success?
    assert_includes err, "heapcapture: cannot build: the libpq development files were not found."
    assert_includes err, "Debian/Ubuntu: sudo apt-get install libpq-dev"
    assert_includes err, "brew install libpq"
    assert_includes err, "then install the gem again (bundle install, or gem install heapcapture)"
    assert_includes err, "gem install heapcapture -- --with-pq-dir=/that/prefix"
    refute_match(%r{bin/setup|checkout}, err, "a gem user has no checkout")
  end

  def test_it_says_which_gzip_engine_the_build_takes
    out, err, status = extconf("--disable-isal")
    assert status.success?, err
    assert_includes out, "heapcapture: ISA-L disabled (--disable-isal); gzip will use zlib"
    out, err, status = extconf # bin/setup installs ISA-L (libisal-dev)
    assert status.success?, err
    assert_includes out, "heapcapture: gzip by ISA-L (igzip)"
  end
end
