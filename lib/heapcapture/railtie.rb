# frozen_string_literal: true

module HeapCapture
  # In a Rails app: makes `rake heapcapture:signal` available (required by heapcapture.rb when
  # Rails is loaded).
  class Railtie < ::Rails::Railtie
    rake_tasks do
      load File.expand_path("tasks/heapcapture.rake", __dir__)
    end
  end
end
