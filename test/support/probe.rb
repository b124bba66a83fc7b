# frozen_string_literal: true

# What the probe scripts (test/support/*_probe.rb, each run by a test in a process of its own so
# that the test process stays small) share: heapcapture set to capture into a folder quietly, and
# a heap of a given size.
require "heapcapture"
require "json"
require "logger"

module HCProbe
  module_function

  # Captures go to file://<dir>/dumps (dest: another folder), tempfiles in tmpdir (dir).
  def configure(dir, dest: File.join(dir, "dumps"), tracing: :off)
    HeapCapture.configure do |c|
      c.tmpdir = dir
      c.destination = "file://#{dest}"
      c.logger = Logger.new(File::NULL)
      c.trace_allocations = tracing
    end
  end

  # About mb MB of RSS: 100-character strings, ~160 bytes each (slot + malloc'd buffer).
  def heap(megabytes) = Array.new(Integer(megabytes) * 1024 * 1024 / 160) { |i| format("%-100d", i) }
end
