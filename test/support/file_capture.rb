# frozen_string_literal: true

require "tmpdir"
require "fileutils"
require "logger"

module HCTest
  # Captures into a file:// destination: a tmpdir and a destination folder made for the test
  # (@tmpdir, @dest), removed after.
  module FileCapture
    def use_file_destination(logger: Logger.new(File::NULL))
      @tmpdir = Dir.mktmpdir("hc-capture-tmp-")
      @dest = Dir.mktmpdir("hc-capture-dest-")
      HeapCapture.configure do |c|
        c.tmpdir = @tmpdir
        c.destination = "file://#{@dest}"
        c.logger = logger
      end
    end

    def remove_file_destination = FileUtils.rm_rf([@tmpdir, @dest])
  end
end
