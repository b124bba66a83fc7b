# frozen_string_literal: true

require "json"
require "tmpdir"
require "fileutils"
require_relative "chromium"
require_relative "bounded_command"

module HCTest
  # What the browser tests of heapcapture's pages share: a folder of their own for the dumps and
  # pages, the command line, and the fixtures that make the dumps.
  module PageHelpers
    ROOT = File.expand_path("../..", __dir__)
    EXE = File.join(ROOT, "exe/heapcapture")
    TIMEOUT = 120

    def setup
      @dir = Dir.mktmpdir("hc-page-")
    end

    def teardown
      FileUtils.rm_rf(@dir)
    end

    def heapcapture(*args)
      BoundedCommand.run({}, RbConfig.ruby, "-I#{File.join(ROOT, 'lib')}", EXE, *args, timeout: TIMEOUT)
    end

    # Runs test/fixtures/retention/NAME.rb with args (the dumps it writes): what it knows of them
    # (its stdout, JSON).
    def run_fixture(name, *args)
      fixture = File.join(ROOT, "test/fixtures/retention/#{name}.rb")
      out, err, status = BoundedCommand.run({ "RUBYOPT" => nil }, RbConfig.ruby, fixture, *args, timeout: TIMEOUT)
      assert status.success?, "fixture #{name}: #{err}"
      JSON.parse(out)
    end
  end
end
