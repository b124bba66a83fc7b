# frozen_string_literal: true

require "fileutils"

module HCTest
  # A memory cgroup of the tests' own, made under the machine's cgroup tree (v2 when its memory
  # controller can be given to a child group, else v1's memory hierarchy), or nil when neither can
  # be made (not root, a read-only /sys/fs/cgroup). Processes are put in with #add; #destroy
  # removes it once they have ended.
  class MemoryCgroup
    V2 = "/sys/fs/cgroup"
    V1 = "/sys/fs/cgroup/memory"

    attr_reader :dir, :version

    def self.create(name)
      v2(name) || (new(File.join(V1, name), 1) if File.directory?(V1))
    rescue SystemCallError
      nil
    end

    def self.v2(name)
      return nil unless File.read("#{V2}/cgroup.controllers").split.include?("memory")

      File.write("#{V2}/cgroup.subtree_control", "+memory")
      new(File.join(V2, name), 2)
    rescue SystemCallError
      nil
    end

    def initialize(dir, version)
      @dir = dir
      @version = version
      FileUtils.mkdir_p(dir)
    end

    def add(pid) = File.write(File.join(@dir, "cgroup.procs"), pid.to_s)

    def limit=(bytes)
      File.write(File.join(@dir, @version == 2 ? "memory.max" : "memory.limit_in_bytes"), bytes.to_s)
    end

    # What the guard counts as in use (HeapCapture::Cgroup): the usage less the inactive file cache.
    def used
      usage = Integer(File.read(File.join(@dir, @version == 2 ? "memory.current" : "memory.usage_in_bytes")).strip)
      stats = File.read(File.join(@dir, "memory.stat"))
      usage - stats[/^#{@version == 2 ? 'inactive_file' : 'total_inactive_file'} (\d+)$/, 1].to_i
    end

    def destroy
      10.times do
        Dir.rmdir(@dir)
        return
      rescue Errno::EBUSY
        sleep 0.1 # its last process is still being reaped
      rescue Errno::ENOENT
        return
      end
    end
  end
end
