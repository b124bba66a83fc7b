# frozen_string_literal: true

# For a Rakefile outside Rails: `require "heapcapture/tasks"` defines heapcapture:signal.
# (In a Rails app HeapCapture::Railtie loads the same file.)
require "rake"
load File.expand_path("tasks/heapcapture.rake", __dir__)
